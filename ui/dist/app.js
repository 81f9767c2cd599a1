"use strict";
let token = null;
let session = null;
let leaving = new AbortController();
class ApiError extends Error {
    status;
    title;
    detail;
    errors;
    kind;
    constructor(status, title, detail, errors = [], kind = "") {
        super(`${status} ${title}${detail ? ": " + detail : ""}`);
        this.status = status;
        this.title = title;
        this.detail = detail;
        this.errors = errors;
        this.kind = kind;
    }
}
function authHeaders() {
    if (!token && session)
        return { "x-tollgate-csrf": session.csrf };
    return { authorization: `Bearer ${token ?? ""}` };
}
function credentials() {
    return !token && session ? "same-origin" : "omit";
}
function signedInAs() {
    return token ?? session?.csrf ?? null;
}
async function failure(res) {
    const text = await res.text();
    let data = null;
    try {
        data = text ? JSON.parse(text) : null;
    }
    catch {
        data = null;
    }
    const kind = typeof data?.type === "string" ? (data.type.split("/").pop() ?? "") : "";
    return new ApiError(res.status, data?.title ?? res.statusText, data?.detail ?? "", data?.errors ?? [], kind);
}
async function api(method, path, body) {
    const headers = authHeaders();
    if (body !== undefined)
        headers["content-type"] = "application/json";
    const res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: credentials(),
    });
    if (!res.ok)
        throw await failure(res);
    const text = await res.text();
    return text ? JSON.parse(text) : null;
}
async function apiBlob(path) {
    const res = await fetch(path, { headers: authHeaders(), credentials: credentials() });
    if (!res.ok)
        throw await failure(res);
    return res.blob();
}
function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params))
        if (v !== null && v !== undefined && v !== "")
            q.set(k, String(v));
    const s = q.toString();
    return s ? `?${s}` : "";
}
function fromAddress(name) {
    return new URLSearchParams(location.search).get(name) ?? "";
}
function toAddress(here, values) {
    if (here.aborted)
        return;
    const s = query(values);
    if (s !== location.search)
        history.replaceState(history.state, "", location.pathname + s);
}
function choose(s, value) {
    if (!value)
        return;
    if (!Array.from(s.options).some((o) => o.value === value))
        s.append(el("option", { value }, value));
    s.value = value;
}
function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs))
        e.setAttribute(k, v);
    for (const c of children)
        e.append(c);
    return e;
}
function button(text, onClick, cls = "", label = "") {
    const attrs = { type: "button" };
    if (cls)
        attrs.class = cls;
    if (label)
        attrs["aria-label"] = label;
    const b = el("button", attrs, text);
    b.addEventListener("click", onClick);
    return b;
}
function describe(e) {
    if (e instanceof ApiError && e.status === 403) {
        return `Not allowed for this role (403)${e.detail ? ": " + e.detail : ""}.`;
    }
    return e instanceof Error ? e.message : String(e);
}
function showError(main, e) {
    const region = main.querySelector("#status") ?? main;
    region.textContent = describe(e);
    region.className = "error";
}
function showStatus(main, text) {
    const region = main.querySelector("#status") ?? main;
    region.textContent = text;
    region.className = "";
}
function statusRegion() {
    return el("p", { id: "status", role: "status" });
}
class BeforePager {
    main;
    newer;
    older;
    load;
    pages;
    next = null;
    constructor(main, newer, older, load) {
        this.main = main;
        this.newer = newer;
        this.older = older;
        this.load = load;
        const from = Number(fromAddress("before"));
        this.pages = Number.isSafeInteger(from) && from > 0 ? [null, from] : [null];
    }
    get before() {
        return this.pages[this.pages.length - 1];
    }
    get past() {
        return this.pages.length > 1;
    }
    offset(perPage) {
        return (this.pages.length - 1) * perPage;
    }
    shown(next) {
        this.next = next;
        this.newer.disabled = !this.past;
        this.older.disabled = next == null;
    }
    async move(step) {
        if (step > 0 && this.next != null)
            this.pages.push(this.next);
        else if (step < 0 && this.past)
            this.pages.pop();
        try {
            await this.load();
            if (document.activeElement === document.body || document.activeElement?.disabled) {
                (this.older.disabled ? this.newer : this.older).focus();
            }
        }
        catch (e) {
            showError(this.main, e);
        }
    }
    restart = () => {
        this.pages = [null];
        void this.load().catch((e) => showError(this.main, e));
    };
    async start() {
        try {
            await this.load();
        }
        catch (e) {
            showError(this.main, e);
        }
    }
}
function table(head, rows, caption = "") {
    return el("table", {}, ...(caption ? [el("caption", {}, caption)] : []), el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}
function when(ms) {
    return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-";
}
function select(id, options, value = "") {
    const s = el("select", { id });
    for (const [v, t] of options)
        s.append(el("option", { value: v }, t));
    s.value = value;
    return s;
}
function seconds(n) {
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
        if (n >= size) {
            parts.push(`${Math.floor(n / size)}${unit}`);
            n %= size;
        }
    }
    return parts.join("") || "0s";
}
const moneyFormats = new Map();
function money(minor, currency) {
    let f = moneyFormats.get(currency);
    if (!f) {
        try {
            f = new Intl.NumberFormat(undefined, { style: "currency", currency });
        }
        catch {
            return `${minor} ${currency} (minor units)`;
        }
        moneyFormats.set(currency, f);
    }
    const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
    const sign = minor < 0 ? "-" : "";
    const whole = String(Math.abs(Math.trunc(minor))).padStart(digits + 1, "0");
    const decimal = digits ? `${whole.slice(0, -digits)}.${whole.slice(-digits)}` : whole;
    return f.format(sign + decimal);
}
function count(n) {
    return n.toLocaleString();
}
const SVG = "http://www.w3.org/2000/svg";
async function events(path, signal, on) {
    const res = await fetch(path, {
        headers: { ...authHeaders(), accept: "text/event-stream" },
        credentials: credentials(),
        signal,
    });
    if (!res.ok || !res.body)
        throw new ApiError(res.status, res.statusText, "");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
        const { value, done } = await reader.read();
        if (done)
            return;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = block
                .split("\n")
                .filter((l) => l.startsWith("data:"))
                .map((l) => l.slice(5).trimStart())
                .join("\n");
            if (data)
                on(data);
        }
    }
}
function lineChart(series, label) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 600 120");
    svg.setAttribute("width", "600");
    svg.setAttribute("height", "120");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    for (const s of series) {
        const line = document.createElementNS(SVG, "polyline");
        line.setAttribute("points", s.values.map((v, i) => `${600 - (s.values.length - 1 - i) * 10},${115 - (v / max) * 110}`).join(" "));
        line.setAttribute("class", s.cls);
        svg.append(line);
    }
    return svg;
}
async function overviewPage(main) {
    const status = el("p", { id: "status", role: "status" });
    const now = el("div", { id: "live" });
    const chart = el("div", {});
    const rules = el("div", {});
    const keys = el("div", {});
    main.append(el("h1", {}, "Overview"), status, now, el("h2", {}, "Decisions and denials per second"), chart, el("h2", {}, "Top denying rules (since start)"), rules, el("h2", {}, "Top denied keys (last hour)"), keys);
    const decided = [];
    const denied = [];
    const ms = (v) => (v == null ? "-" : `≤ ${v} ms`);
    api("GET", `/v1/violations?from=${Date.now() - 3_600_000}&limit=1000`)
        .then((v) => {
        const by = new Map();
        for (const x of v.violations)
            if (x.key_id)
                by.set(x.key_id, (by.get(x.key_id) ?? 0) + 1);
        const top = [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
        keys.replaceChildren(top.length
            ? table(["Key", "Denials"], top.map(([k, n]) => [el("a", { href: `/ui/keys/${encodeURIComponent(k)}` }, k), String(n)]))
            : el("p", {}, "No key was denied in the last hour."));
    })
        .catch((e) => showError(main, e));
    const signal = leaving.signal;
    try {
        await events("/v1/live", signal, (data) => {
            const s = JSON.parse(data);
            decided.push(s.decisions_per_second);
            denied.push(s.denials_per_second);
            if (decided.length > 60)
                decided.shift(), denied.shift();
            now.replaceChildren(table(["Decisions/s", "Denials/s", "Latency p50", "Latency p99", "Decisions", "Store"], [[
                    el("span", { id: "live-rate" }, String(s.decisions_per_second)),
                    String(s.denials_per_second),
                    ms(s.latency_ms.p50),
                    ms(s.latency_ms.p99),
                    el("span", { id: "live-total" }, String(s.decisions_total)),
                    s.store.healthy ? `healthy${s.store.detail ? ": " + s.store.detail : ""}` : `unavailable: ${s.store.detail}`,
                ]]));
            chart.replaceChildren(lineChart([
                { values: decided, cls: "decided" },
                { values: denied, cls: "denied" },
            ], `decisions per second over the last minute, now ${s.decisions_per_second}; denials now ${s.denials_per_second}`));
            rules.replaceChildren(s.top_denied_rules.length
                ? table(["Rule", "Denials"], s.top_denied_rules.map((r) => [r.rule, String(r.denied)]))
                : el("p", {}, "No rule has denied a request."));
        });
    }
    catch (e) {
        if (!signal.aborted)
            showError(main, e);
    }
}
async function keysPage(main, rest) {
    const here = leaving.signal;
    if (rest[0])
        return keyPage(main, rest[0]);
    const status = statusRegion();
    const name = el("input", { id: "new-name", required: "" });
    const owner = el("input", { id: "new-owner", required: "", list: "owner-list" });
    const tier = el("input", { id: "new-tier", list: "tier-list" });
    const create = el("form", { class: "inline", "aria-label": "Create a key" }, el("label", { for: "new-name" }, "Name ", name), el("label", { for: "new-owner" }, "Owner ", owner), el("label", { for: "new-tier" }, "Tier ", tier), el("button", { type: "submit" }, "Create key"));
    const secret = el("div", { id: "secret", "aria-live": "polite" });
    const search = el("input", { id: "search", type: "search", autocomplete: "off" });
    const byStatus = select("filter-status", [
        ["", "any status"],
        ["active", "active"],
        ["disabled", "disabled"],
        ["revoked", "revoked"],
    ]);
    const byTier = select("filter-tier", [["", "any tier"]]);
    const byOwner = el("input", { id: "filter-owner", list: "owner-list", autocomplete: "off" });
    const filters = el("form", { class: "inline", role: "search", "aria-label": "Filter keys" }, el("label", { for: "search" }, "Search ", search), el("label", { for: "filter-status" }, "Status ", byStatus), el("label", { for: "filter-tier" }, "Tier ", byTier), el("label", { for: "filter-owner" }, "Owner ", byOwner), el("button", { type: "submit", class: "secondary" }, "Filter"));
    const owners = el("datalist", { id: "owner-list" });
    const tierList = el("datalist", { id: "tier-list" });
    const shownCount = el("p", { id: "key-count", "aria-live": "polite" });
    const list = el("div", { id: "list" });
    const more = el("p", {});
    main.append(el("h1", {}, "Keys"), status, el("h2", {}, "Create a key"), create, secret, el("h2", {}, "Every key"), filters, shownCount, list, more, owners, tierList);
    search.value = fromAddress("q");
    choose(byStatus, fromAddress("status"));
    byOwner.value = fromAddress("owner");
    let keys = [];
    let next = null;
    const draw = () => {
        toAddress(here, { q: search.value.trim(), status: byStatus.value, tier: byTier.value, owner: byOwner.value.trim() });
        const q = search.value.trim().toLowerCase();
        const shown = keys.filter((k) => [k.id, k.name, k.tier, k.owner].some((f) => String(f ?? "").toLowerCase().includes(q)));
        shownCount.textContent =
            `${shown.length} ${shown.length === 1 ? "key" : "keys"}` + (q ? ` matching “${search.value.trim()}”` : "") +
                (next ? `, of the first ${keys.length} loaded` : "");
        list.replaceChildren(shown.length
            ? table(["Name", "Id", "Owner", "Tier", "Status", "Created", "Last used"], shown.map((k) => [
                el("a", { href: `/ui/keys/${encodeURIComponent(k.id)}` }, k.name || k.id),
                k.id,
                k.owner,
                k.tier,
                String(k.status),
                when(k.created_at),
                when(k.last_used_at),
            ]))
            : el("p", {}, "No key matches."));
        more.replaceChildren(...(next ? [button("Load more keys", () => void load(true).catch((e) => showError(main, e)), "secondary")] : []));
        const known = new Set(keys.map((k) => k.owner));
        for (const o of Array.from(owners.querySelectorAll("option")))
            known.delete(o.value);
        for (const o of known)
            owners.append(el("option", { value: o }));
    };
    const load = async (append = false) => {
        const page = await api("GET", "/v1/keys" +
            query({
                status: byStatus.value,
                tier: byTier.value,
                owner: byOwner.value.trim(),
                after: append ? next : null,
                limit: 1000,
            }));
        keys = append ? keys.concat(page.keys) : page.keys;
        next = page.next ?? null;
        draw();
    };
    const reload = () => void load().catch((e) => showError(main, e));
    search.addEventListener("input", draw);
    byStatus.addEventListener("change", reload);
    byTier.addEventListener("change", reload);
    byOwner.addEventListener("change", reload);
    filters.addEventListener("submit", (ev) => {
        ev.preventDefault();
        reload();
    });
    create.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
            const body = { name: name.value, owner: owner.value };
            if (tier.value)
                body.tier = tier.value;
            const made = await api("POST", "/v1/keys", body);
            showSecret(secret, made.secret);
            showStatus(main, `Created ${made.key.id}`);
            await load();
        }
        catch (e) {
            showError(main, e);
        }
    });
    try {
        const [tiers, known] = await Promise.all([
            api("GET", "/v1/tiers"),
            api("GET", "/v1/owners?limit=1000").catch(() => ({ owners: [] })),
        ]);
        for (const t of tierNames(tiers)) {
            byTier.append(el("option", { value: t }, t));
            tierList.append(el("option", { value: t }));
        }
        choose(byTier, fromAddress("tier"));
        for (const o of known.owners)
            owners.append(el("option", { value: o.id }, o.name ?? o.id));
        await load();
    }
    catch (e) {
        showError(main, e);
    }
}
function tierNames(answer) {
    const t = answer?.tiers;
    if (Array.isArray(t))
        return t.map((x) => (typeof x === "string" ? x : x.name)).filter(Boolean);
    return t && typeof t === "object" ? Object.keys(t) : [];
}
function showSecret(into, secret) {
    const code = el("code", { class: "secret", id: "secret-value" }, secret);
    into.replaceChildren(el("p", {}, "The key's secret, shown this once: "), code, " ", button("Copy", () => void navigator.clipboard?.writeText(secret), "secondary"));
}
async function keyPage(main, id) {
    const status = statusRegion();
    const secret = el("div", { id: "secret", "aria-live": "polite" });
    main.append(el("h1", {}, `Key ${id}`), status, secret);
    const path = `/v1/keys/${encodeURIComponent(id)}`;
    try {
        const k = await api("GET", path);
        const record = el("div", {});
        const drawRecord = (k) => record.replaceChildren(table(["Field", "Value"], Object.entries(k).map(([f, v]) => [
            f,
            f.endsWith("_at") && typeof v === "number" ? when(v) : typeof v === "object" ? JSON.stringify(v) : String(v),
        ])));
        drawRecord(k);
        main.append(record, el("p", {}, button("Rotate", async () => {
            try {
                const r = await api("POST", `${path}/rotate`, {});
                showSecret(secret, r.secret);
            }
            catch (e) {
                showError(main, e);
            }
        }), " ", button("Revoke", async () => {
            try {
                await api("DELETE", path);
                showStatus(main, "Revoked");
            }
            catch (e) {
                showError(main, e);
            }
        }, "secondary")));
        const tierInput = el("input", { id: "key-tier", value: String(k.tier ?? ""), list: "key-tier-list" });
        const tierList = el("datalist", { id: "key-tier-list" });
        api("GET", "/v1/tiers")
            .then((t) => tierList.append(...tierNames(t).map((n) => el("option", { value: n }))))
            .catch(() => undefined);
        const tierForm = el("form", { class: "inline", "aria-label": "Change tier" }, el("label", { for: "key-tier" }, "Tier ", tierInput), tierList, el("button", { type: "submit" }, "Change tier"));
        const limits = el("div", { id: "key-limits" });
        const drawLimits = async () => {
            const l = await api("GET", `${path}/limits`);
            limits.replaceChildren(l.limits.length
                ? table(["Limit", "From", "Algorithm", "Allows", "Window", "Counter"], l.limits.map((x) => [
                    x.name,
                    x.source,
                    x.algorithm,
                    count(x.limit),
                    x.window_ms == null ? "-" : seconds(Math.round(x.window_ms / 1000)),
                    x.counter ?? "-",
                ]))
                : el("p", {}, "No limit of its tier or its own applies to this key."));
        };
        tierForm.addEventListener("submit", async (ev) => {
            ev.preventDefault();
            try {
                const changed = await api("PATCH", path, { tier: tierInput.value });
                showStatus(main, `Tier is now ${changed.tier}`);
                drawRecord(changed);
                await drawLimits();
            }
            catch (e) {
                showError(main, e);
            }
        });
        main.append(tierForm, overridesEditor(main, path, k.overrides, (changed) => {
            drawRecord(changed);
            return drawLimits();
        }), el("h2", {}, "Limits in force"), limits, usageChart(path), keyViolations(id));
        drawLimits().catch((e) => limits.replaceChildren(el("p", { class: "error" }, describe(e))));
        const usage = await api("GET", `${path}/usage`).catch(() => null);
        if (usage)
            main.append(el("h2", {}, "Usage now"), el("pre", {}, JSON.stringify(usage, null, 2)));
    }
    catch (e) {
        showError(main, e);
    }
}
function overridesEditor(main, path, current, saved) {
    const area = el("textarea", {
        id: "key-overrides",
        rows: "6",
        cols: "60",
        spellcheck: "false",
        "aria-describedby": "overrides-help overrides-errors",
    });
    area.value = JSON.stringify(current ?? {}, null, 2);
    const errors = el("div", { id: "overrides-errors" });
    const form = el("form", { "aria-label": "Overrides" }, el("label", { for: "key-overrides" }, "Overrides (JSON)"), el("p", { id: "overrides-help", class: "hint" }, 'Limits of the tier to change, by name, and limits of the key\'s own: {"requests": {"limit": 5000}} ' +
        "changes only the fields given; null drops one; {} clears every override."), area, errors, el("p", {}, el("button", { type: "submit" }, "Save overrides")));
    const fail = (lines) => {
        area.setAttribute("aria-invalid", "true");
        errors.replaceChildren(el("ul", { class: "error" }, ...lines.map((l) => el("li", {}, l))));
    };
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        let overrides;
        try {
            overrides = JSON.parse(area.value.trim() || "{}");
        }
        catch (e) {
            return fail([`Not JSON: ${e instanceof Error ? e.message : String(e)}`]);
        }
        try {
            const changed = await api("PATCH", path, { overrides });
            area.removeAttribute("aria-invalid");
            errors.replaceChildren();
            area.value = JSON.stringify(changed.overrides ?? {}, null, 2);
            showStatus(main, "Overrides saved");
            await saved(changed);
        }
        catch (e) {
            if (e instanceof ApiError && e.errors.length)
                fail(e.errors.map((x) => `${x.path}: ${x.message}`));
            else
                fail([describe(e)]);
        }
    });
    return el("section", { "aria-labelledby": "overrides-title" }, el("h2", { id: "overrides-title" }, "Overrides"), form);
}
function keyViolations(id) {
    const body = el("div", { id: "key-violations" });
    const more = el("p", {});
    let rows = [];
    const load = async (after) => {
        const v = await api("GET", "/v1/violations" + query({ key_id: id, after, limit: 50 }));
        rows = rows.concat(v.violations);
        body.replaceChildren(rows.length
            ? table(["At", "Rule", "Code", "Subject"], rows.map((x) => [when(x.at), x.rule || "-", x.code, JSON.stringify(x.subject ?? {})]))
            : el("p", {}, "This key has not been denied."));
        more.replaceChildren(...(v.next != null
            ? [button("More violations", () => void load(v.next).catch((e) => (body.textContent = describe(e))), "secondary")]
            : []));
    };
    void load(null).catch((e) => body.replaceChildren(el("p", { class: "error" }, describe(e))));
    return el("section", { "aria-labelledby": "violations-title" }, el("h2", { id: "violations-title" }, "Violations"), body, more);
}
const RANGES = { minute: 3_600_000, hour: 86_400_000, day: 30 * 86_400_000 };
function usageChart(keyPath) {
    const select = el("select", { id: "granularity" });
    for (const g of Object.keys(RANGES))
        select.append(el("option", { value: g }, `per ${g}`));
    select.value = "minute";
    const caption = el("p", { id: "usage-total", "aria-live": "polite" });
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 600 160");
    svg.setAttribute("width", "600");
    svg.setAttribute("height", "160");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-labelledby", "usage-total");
    const draw = async () => {
        const to = Date.now();
        const g = select.value;
        const h = await api("GET", `${keyPath}/usage/history?granularity=${g}&from=${to - RANGES[g]}&to=${to}`);
        const buckets = h.buckets;
        const max = Math.max(1, ...buckets.map((b) => b.requests));
        const width = 600 / Math.max(buckets.length, 30);
        svg.replaceChildren();
        buckets.forEach((b, i) => {
            const bar = (value, base, cls) => {
                const r = document.createElementNS(SVG, "rect");
                const height = (value / max) * 150;
                r.setAttribute("x", String(600 - (buckets.length - i) * width));
                r.setAttribute("y", String(160 - base - height));
                r.setAttribute("width", String(Math.max(width - 1, 1)));
                r.setAttribute("height", String(height));
                r.setAttribute("class", cls);
                svg.append(r);
                return height;
            };
            const a = bar(b.allowed, 0, "allowed");
            bar(b.denied, a, "denied");
        });
        const sum = (f) => buckets.reduce((n, b) => n + b[f], 0);
        caption.textContent = `${sum("requests")} requests (${sum("allowed")} allowed, ${sum("denied")} denied) ${g === "day" ? "in the last 30 days" : g === "hour" ? "in the last day" : "in the last hour"}, per ${g}`;
    };
    select.addEventListener("change", () => void draw().catch((e) => (caption.textContent = String(e))));
    const refresh = button("Refresh", () => void draw().catch((e) => (caption.textContent = String(e))), "secondary");
    void draw().catch((e) => (caption.textContent = String(e)));
    return el("section", { "aria-label": "Usage" }, el("h2", {}, "Usage"), el("label", { for: "granularity" }, "Granularity ", select), " ", refresh, svg, caption);
}
async function policyPage(main) {
    const status = statusRegion();
    main.append(el("h1", {}, "Policy"), status, tryPanel());
    try {
        const config = await api("GET", "/v1/config");
        const rules = el("div", { id: "policy-rules" });
        const tiers = el("div", { id: "policy-tiers" });
        const inForce = el("pre", { id: "policy-json" });
        const draw = (policy) => {
            rules.replaceChildren(limitsTable(policy.rules, "The policy has no rules.", "Rule"));
            const named = Object.entries(policy.tiers ?? {});
            tiers.replaceChildren(...(named.length
                ? named.map(([name, t]) => limitsTable(t.limits, `${name} has no limits.`, "Limit", t.description ? `${name}: ${t.description}` : name))
                : [el("p", {}, "The policy defines no tiers.")]));
            inForce.textContent = JSON.stringify(policy, null, 2);
        };
        draw(config);
        main.append(el("h2", {}, "Rules in force"), rules, el("h2", {}, "Tiers"), tiers, el("details", {}, el("summary", {}, "The whole policy in force, as JSON"), inForce));
        const section = el("section", { "aria-labelledby": "edit-title" }, el("h2", { id: "edit-title" }, "Edit the policy"));
        main.append(section);
        if (await isAdmin()) {
            section.append(policyEditor(main, config, draw));
        }
        else {
            section.append(el("p", { id: "edit-refused" }, "Changing the policy needs the admin role; this token may read it only."));
        }
    }
    catch (e) {
        showError(main, e);
    }
}
function limitsTable(list, none, first, caption = "") {
    if (!Array.isArray(list) || !list.length)
        return el("p", {}, none);
    const main = ["name", "algorithm", "limit", "period", "key", "match"];
    return table([first, "Algorithm", "Limit", "Period", "Counter key", "Matches", "Also"], list.map((r) => [
        String(r.name ?? "-"),
        String(r.algorithm ?? "gcra"),
        typeof r.limit === "number" ? count(r.limit) : String(r.limit ?? "-"),
        String(r.period ?? "-"),
        String(r.key ?? "-"),
        r.match ? Object.entries(r.match).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ") : "every request",
        Object.entries(r)
            .filter(([k]) => !main.includes(k))
            .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
            .join(", ") || "-",
    ]), caption);
}
let adminOf = null;
function isAdmin() {
    if (!adminOf || adminOf.who !== signedInAs()) {
        adminOf = {
            who: signedInAs(),
            admin: api("GET", "/v1/audit?limit=1").then(() => true, (e) => !(e instanceof ApiError && (e.status === 403 || e.status === 401))),
        };
    }
    return adminOf.admin;
}
function pathText(segs) {
    return segs.reduce((p, s) => (typeof s === "number" ? `${p}[${s}]` : p ? `${p}.${s}` : s), "");
}
function parentPath(path) {
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    return cut > 0 ? path.slice(0, cut) : "";
}
function clone(v) {
    return v === undefined ? v : JSON.parse(JSON.stringify(v));
}
function parseLeaf(text, was) {
    const t = text.trim();
    if (typeof was === "number")
        return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t) ? Number(t) : text;
    if (was === null) {
        if (!t)
            return null;
        try {
            return JSON.parse(t);
        }
        catch {
            return text;
        }
    }
    return text;
}
function policyEditor(main, initial, saved) {
    let doc = clone(initial);
    let serial = 0;
    let spots = new Map();
    const tree = el("div", { id: "policy-tree" });
    const summary = el("div", { id: "policy-errors", tabindex: "-1" });
    const done = el("p", { id: "policy-saved", role: "status" });
    const at = (segs) => segs.reduce((v, s) => v?.[s], doc);
    const put = (segs, value) => {
        if (!segs.length)
            doc = value;
        else
            at(segs.slice(0, -1))[segs[segs.length - 1]] = value;
    };
    const remove = (segs) => {
        const parent = at(segs.slice(0, -1));
        const last = segs[segs.length - 1];
        if (Array.isArray(parent))
            parent.splice(last, 1);
        else
            delete parent[last];
    };
    const redraw = (focusPath) => {
        spots = new Map();
        summary.replaceChildren();
        tree.replaceChildren(node(doc, [], "Policy"));
        const spot = focusPath !== undefined ? spots.get(focusPath) : undefined;
        spot?.focus.focus();
    };
    const node = (value, segs, label, removable = false) => {
        const path = pathText(segs);
        const id = `pf-${serial++}`;
        const removeButton = () => button("Remove", () => {
            remove(segs);
            redraw(parentPath(path));
        }, "secondary small", `Remove ${path}`);
        if (value !== null && typeof value === "object") {
            const legend = el("legend", { id, tabindex: "-1" }, label);
            if (removable)
                legend.append(" ", removeButton());
            const box = el("fieldset", { class: "node", "data-path": path }, legend);
            spots.set(path, { focus: legend, slot: box });
            if (Array.isArray(value)) {
                value.forEach((item, i) => box.append(node(item, [...segs, i], `${label} ${i + 1}`, true)));
                box.append(button("Add an item", () => {
                    value.push(value.length ? clone(value[value.length - 1]) : "");
                    redraw(pathText([...segs, value.length - 1]));
                }, "secondary small", `Add an item to ${path || "the policy"}`));
            }
            else {
                for (const [k, v] of Object.entries(value))
                    box.append(node(v, [...segs, k], k, true));
                box.append(addField(value, segs));
            }
            return box;
        }
        let input;
        if (typeof value === "boolean") {
            input = select(id, [["true", "true"], ["false", "false"]], String(value));
            input.addEventListener("change", () => put(segs, input.value === "true"));
        }
        else {
            input = el("input", {
                id,
                value: value === null ? "" : String(value),
                autocomplete: "off",
                spellcheck: "false",
                ...(typeof value === "number" ? { inputmode: "decimal" } : {}),
                ...(value === null ? { placeholder: "null" } : {}),
            });
            input.addEventListener("input", () => put(segs, parseLeaf(input.value, value)));
        }
        input.setAttribute("data-path", path);
        const field = el("div", { class: "field" }, el("label", { for: id }, label), input);
        if (removable)
            field.append(removeButton());
        spots.set(path, { focus: input, slot: field, input });
        return field;
    };
    const addField = (obj, segs) => {
        const path = pathText(segs);
        const holder = el("div", { class: "add" });
        const open = button("Add a field", () => {
            const n = serial++;
            const name = el("input", { id: `add-name-${n}`, autocomplete: "off" });
            const val = el("input", { id: `add-value-${n}`, autocomplete: "off", spellcheck: "false" });
            const why = el("p", { class: "error", id: `add-why-${n}` });
            const add = () => {
                const k = name.value.trim();
                if (!k)
                    return void (why.textContent = "A field needs a name.");
                if (k in obj)
                    return void (why.textContent = `${k} is there already.`);
                let v = val.value;
                try {
                    v = JSON.parse(val.value);
                }
                catch {
                }
                obj[k] = v;
                redraw(pathText([...segs, k]));
            };
            for (const i of [name, val]) {
                i.addEventListener("keydown", (ev) => {
                    if (ev.key === "Enter") {
                        ev.preventDefault();
                        add();
                    }
                });
            }
            holder.replaceChildren(el("label", { for: name.id }, "New field ", name), el("label", { for: val.id }, "Value (JSON or text) ", val), button("Add", add, "small", `Add the field to ${path || "the policy"}`), button("Cancel", () => {
                holder.replaceChildren(open);
                open.focus();
            }, "secondary small"), why);
            name.focus();
        }, "secondary small", `Add a field to ${path || "the policy"}`);
        holder.append(open);
        return holder;
    };
    const showErrors = (e) => {
        const errors = e.errors.length ? e.errors : [{ path: "", message: e.detail || e.title }];
        const items = errors.map((x, i) => {
            let path = x.path;
            while (!spots.has(path) && path)
                path = parentPath(path);
            const spot = spots.get(path) ?? spots.get("");
            const eid = `pe-${i}`;
            const text = path === x.path ? x.message : `${x.path}: ${x.message}`;
            const message = el("p", { class: "error field-error", id: eid }, text);
            if (spot.input)
                spot.slot.append(message);
            else
                spot.slot.insertBefore(message, spot.slot.children[1] ?? null);
            const target = spot.input ?? spot.focus;
            if (spot.input)
                spot.input.setAttribute("aria-invalid", "true");
            target.setAttribute("aria-describedby", [target.getAttribute("aria-describedby"), eid].filter(Boolean).join(" "));
            return el("li", {}, el("a", { href: `#${target.id}` }, `${x.path || "the policy"}: ${x.message}`));
        });
        summary.replaceChildren(el("h3", {}, `The policy was not saved: ${errors.length} ${errors.length === 1 ? "error" : "errors"}`), el("ul", { class: "error" }, ...items));
        summary.className = "problems";
        summary.focus();
    };
    const save = button("Save policy", async () => {
        done.textContent = "";
        try {
            const now = await api("PUT", "/v1/config", doc);
            doc = clone(now);
            redraw();
            saved(now);
            done.textContent = "Saved: the policy is in force.";
            showStatus(main, "Policy saved");
        }
        catch (e) {
            redraw();
            if (e instanceof ApiError)
                showErrors(e);
            else
                showError(main, e);
        }
    });
    const reset = button("Discard changes", async () => {
        try {
            doc = clone(await api("GET", "/v1/config"));
            redraw();
            done.textContent = "Changes discarded: the form shows the policy in force.";
        }
        catch (e) {
            showError(main, e);
        }
    }, "secondary");
    redraw();
    return el("div", { class: "editor" }, el("p", { class: "hint" }, "Every value of the policy is a field. Nothing changes until it is saved; the server checks the whole policy first and refuses it with every error, shown here at its place."), summary, tree, el("p", {}, save, " ", reset), done);
}
function tryPanel() {
    const fields = ["user", "ip", "method", "path", "tenant", "api_key"];
    const inputs = fields.map((f) => el("input", { id: `try-${f}`, autocomplete: "off" }));
    const out = el("div", { id: "explain", "aria-live": "polite" });
    const form = el("form", { class: "inline", "aria-label": "Try a request" }, ...fields.map((f, i) => el("label", { for: `try-${f}` }, `${f} `, inputs[i])), el("button", { type: "submit" }, "Explain"));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const subject = {};
        fields.forEach((f, i) => {
            if (inputs[i].value)
                subject[f] = inputs[i].value;
        });
        try {
            const x = await api("POST", "/v1/explain", { subject });
            const d = x.decision;
            out.replaceChildren(el("p", { id: "explain-summary" }, `${d.allowed ? "Allowed" : "Denied"} (${d.code}); ${x.rules_examined} of ${x.rules_total} rules examined` +
                (x.listed ? `; on the ${x.listed.list} list (${x.listed.entry})` : "") +
                "; nothing consumed"), table(["Rule", "Counter key", "Limit", "Remaining", "Would"], d.limits.map((l) => [l.name, l.key, String(l.limit), String(l.remaining), l.exceeded ? "deny" : "allow"])), el("h3", {}, "Headers"), el("pre", {}, Object.entries(d.headers ?? {}).map(([k, v]) => `${k}: ${v}`).join("\n")));
        }
        catch (e) {
            out.replaceChildren(el("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
        }
    });
    return el("section", { "aria-label": "Try a request" }, el("h2", {}, "Try a request"), form, out);
}
async function violationsPage(main) {
    const status = el("p", { id: "status", role: "status" });
    main.append(el("h1", {}, "Violations"), status);
    try {
        const v = await api("GET", "/v1/violations?limit=100");
        const items = v.violations;
        main.append(table(["At", "Key", "Rule", "Code"], items.map((i) => [when(i.at), i.key_id ?? "-", i.rule, i.code])));
    }
    catch (e) {
        showError(main, e);
    }
}
async function auditPage(main) {
    const status = el("p", { id: "status", role: "status" });
    main.append(el("h1", {}, "Audit log"), status);
    try {
        const a = await api("GET", "/v1/audit?limit=100");
        const items = a.entries;
        main.append(table(["At", "Actor", "Role", "Action", "Target", "Status"], items.map((i) => [when(i.at), i.actor, i.role, i.action, i.target, String(i.status)])));
    }
    catch (e) {
        showError(main, e);
    }
}
function watches(r) {
    if (r.usage) {
        const of = r.usage.of === "included" ? "the plan's included units" : `${count(r.usage.of)} units`;
        return `usage per ${r.usage.per} reaches ${r.usage.percent}% of ${of} this period`;
    }
    if (r.denials) {
        return `${count(r.denials.at_least)} or more denials per ${r.denials.per} within ${seconds(r.denials.window_seconds)}`;
    }
    if (r.spike) {
        return `a key's denials in a minute reach ${r.spike.factor}× its usual rate (at least ${count(r.spike.at_least)}; half-life ${seconds(r.spike.half_life_seconds)})`;
    }
    if (r.failing)
        return `the ${r.failing} does not answer`;
    return "-";
}
async function alertsPage(main) {
    const here = leaving.signal;
    const status = statusRegion();
    const rules = el("div", { id: "alert-rules" });
    const firing = el("div", { id: "alert-firing" });
    const byRule = select("alert-rule", [["", "every rule"]]);
    const perPage = select("alert-limit", [["10", "10"], ["25", "25"], ["100", "100"]], "25");
    const filter = el("form", { class: "inline", "aria-label": "Filter the history" }, el("label", { for: "alert-rule" }, "Rule ", byRule), el("label", { for: "alert-limit" }, "Per page ", perPage), el("button", { type: "submit", class: "secondary" }, "Show"));
    const where = el("p", { id: "alert-page", "aria-live": "polite" });
    const history = el("div", { id: "alert-history" });
    const newer = button("Newer events", () => void pager.move(-1), "secondary");
    const older = button("Older events", () => void pager.move(1), "secondary");
    main.append(el("h1", {}, "Alerts"), status, el("h2", {}, "Rules"), rules, el("h2", {}, "Firing now"), firing, el("h2", {}, "History"), filter, where, history, el("p", { class: "pager" }, newer, " ", older));
    choose(byRule, fromAddress("rule"));
    choose(perPage, fromAddress("limit"));
    let named = false;
    const load = async () => {
        const before = pager.before;
        const a = await api("GET", "/v1/alerts" + query({ rule: byRule.value, before, limit: perPage.value }));
        toAddress(here, { rule: byRule.value, limit: perPage.value === "25" ? null : perPage.value, before });
        if (!named) {
            named = true;
            const names = new Set(a.rules.map((r) => r.name));
            for (const n of names)
                if (!Array.from(byRule.options).some((o) => o.value === n))
                    byRule.append(el("option", { value: n }, n));
        }
        rules.replaceChildren(a.rules.length
            ? table(["Rule", "Watches", "Severity", "Channels", "Tells the owner"], a.rules.map((r) => [r.name, watches(r), r.severity, (r.channels ?? []).join(", ") || "-", r.outreach ? "yes" : "no"]))
            : el("p", {}, "No alert rules are configured: add an alerts section to the configuration."));
        firing.replaceChildren(a.firing.length
            ? table(["Rule", "About", "Since", "Value"], a.firing.map((f) => [f.rule, f.subject, when(f.since), String(f.value)]))
            : el("p", {}, byRule.value ? `Nothing of ${byRule.value} is firing.` : "Nothing is firing."));
        const events = a.events;
        const first = pager.offset(Number(perPage.value));
        where.textContent = events.length
            ? `Events ${first + 1} to ${first + events.length}, newest first` + (byRule.value ? `, of ${byRule.value}` : "")
            : pager.past
                ? "No older events."
                : "No alert has fired yet.";
        history.replaceChildren(...(events.length
            ? [
                table(["At", "Rule", "About", "Event", "Severity", "Value", "Summary"], events.map((e) => [
                    when(e.at),
                    e.rule,
                    e.subject,
                    el("span", { class: `event ${e.event}` }, e.event),
                    e.severity,
                    String(e.value),
                    e.summary,
                ])),
            ]
            : []));
        pager.shown(a.next_before ?? null);
    };
    const pager = new BeforePager(main, newer, older, load);
    byRule.addEventListener("change", pager.restart);
    perPage.addEventListener("change", pager.restart);
    filter.addEventListener("submit", (ev) => {
        ev.preventDefault();
        pager.restart();
    });
    await pager.start();
}
async function billingPage(main) {
    const here = leaving.signal;
    const status = statusRegion();
    const owner = select("billing-owner", []);
    const picker = el("form", { class: "inline", "aria-label": "Choose an owner" }, el("label", { for: "billing-owner" }, "Owner ", owner), el("button", { type: "submit", class: "secondary" }, "Show"));
    const current = el("div", { id: "billing-current" });
    const closed = el("div", { id: "billing-records" });
    const download = el("p", {});
    main.append(el("h1", {}, "Billing"), status, picker, el("h2", {}, "This period so far"), current, el("h2", {}, "Closed periods"), download, closed);
    const show = async () => {
        const o = owner.value;
        if (!o)
            return;
        toAddress(here, { owner: o });
        const path = `/v1/owners/${encodeURIComponent(o)}/billing/current`;
        const [now, records] = await Promise.all([
            api("GET", path),
            api("GET", "/v1/billing/records" + query({ owner: o })),
        ]);
        const lines = now.lines;
        const rows = lines.map((l) => [
            now.scope === "key" ? `${l.tier} (key ${l.account})` : l.tier,
            `${l.period} (${when(l.period_start)} to ${when(l.period_end)} UTC)`,
            count(l.units),
            count(l.included),
            count(l.overage_units),
            money(l.base_fee, l.currency),
            money(l.overage_amount, l.currency),
            money(l.amount, l.currency),
        ]);
        const head = ["Tier", "Period", "Units", "Included", "Beyond", "Base fee", "Overage", "Amount"];
        current.replaceChildren(...(lines.length
            ? [
                table(head, rows, `${o}: the current period, projected from the usage so far`),
                el("p", { id: "billing-total" }, now.total != null
                    ? `Total so far: ${money(now.total, lines[0].currency)}`
                    : "The lines are in more than one currency, so they have no single total."),
            ]
            : [el("p", {}, `${o} has no live key on a billed tier this period.`)]));
        const rs = records.records;
        closed.replaceChildren(rs.length
            ? table(["Period (UTC)", "Tier", "Units", "Included", "Beyond", "Base fee", "Overage", "Amount", "Closed"], rs.map((r) => [
                `${when(r.period_start)} to ${when(r.period_end)}`,
                now.scope === "key" ? `${r.tier} (key ${r.account})` : r.tier,
                count(r.units),
                count(r.included),
                count(r.overage_units),
                money(r.base_fee, r.currency),
                money(r.overage_amount, r.currency),
                money(r.amount, r.currency),
                when(r.closed_at),
            ]), `${o}: records of closed periods, oldest first`)
            : el("p", {}, `No period of ${o} has been closed yet.`));
        download.replaceChildren(button("Download CSV", async () => {
            try {
                const blob = await apiBlob("/v1/billing/records" + query({ owner: o, format: "csv" }));
                const url = URL.createObjectURL(blob);
                const a = el("a", { href: url, download: `billing-${o}.csv` });
                document.body.append(a);
                a.click();
                a.remove();
                setTimeout(() => URL.revokeObjectURL(url), 10_000);
                showStatus(main, `Downloaded billing-${o}.csv`);
            }
            catch (e) {
                showError(main, e);
            }
        }, "secondary", `Download CSV of ${o}'s closed periods`));
    };
    const run = () => void show().catch((e) => {
        if (e instanceof ApiError && e.status === 404 && /billing/i.test(e.title + e.detail)) {
            current.replaceChildren(el("p", {}, "Billing is not configured on this server: add a billing section with a plan per tier."));
            closed.replaceChildren();
            download.replaceChildren();
        }
        else
            showError(main, e);
    });
    owner.addEventListener("change", run);
    picker.addEventListener("submit", (ev) => {
        ev.preventDefault();
        run();
    });
    try {
        const [records, keys] = await Promise.all([
            api("GET", "/v1/owners?limit=1000"),
            api("GET", "/v1/keys?limit=1000"),
        ]);
        const names = new Map();
        for (const o of records.owners)
            names.set(o.id, o.name && o.name !== o.id ? `${o.id} (${o.name})` : o.id);
        for (const k of keys.keys)
            if (!names.has(k.owner))
                names.set(k.owner, k.owner);
        const sorted = [...names.entries()].sort((a, b) => a[0].localeCompare(b[0]));
        if (!sorted.length) {
            current.replaceChildren(el("p", {}, "No owner yet: create a key or an owner record first."));
            return;
        }
        for (const [id, text] of sorted)
            owner.append(el("option", { value: id }, text));
        owner.value = sorted[0][0];
        choose(owner, fromAddress("owner"));
        run();
    }
    catch (e) {
        showError(main, e);
    }
}
const JOB_STATES = ["queued", "running", "done", "dead", "discarded"];
async function jobsPage(main, rest) {
    const here = leaving.signal;
    if (rest[0])
        return jobPage(main, rest[0]);
    const status = statusRegion();
    const counts = el("div", { id: "job-counts" });
    const state = select("job-state", JOB_STATES.map((s) => [s, s]), "dead");
    const filter = el("form", { class: "inline", "aria-label": "Choose a state" }, el("label", { for: "job-state" }, "State ", state), el("button", { type: "submit", class: "secondary" }, "Show"));
    const title = el("h2", { id: "jobs-title" });
    const list = el("div", { id: "job-list" });
    main.append(el("h1", {}, "Job queue"), status, el("h2", {}, "Jobs per state"), counts, title, filter, list);
    choose(state, fromAddress("state"));
    const load = async () => {
        toAddress(here, { state: state.value === "dead" ? null : state.value });
        const j = await api("GET", "/v1/jobs" + query({ state: state.value, limit: 200 }));
        const by = new Map(j.counts.map((c) => [c.state, c]));
        counts.replaceChildren(table(["State", "Jobs", "Oldest queued at"], JOB_STATES.map((s) => [s, el("span", { id: `count-${s}` }, count(by.get(s)?.count ?? 0)), when(by.get(s)?.oldest)])));
        title.textContent = state.value === "dead" ? "Dead letters" : `Jobs ${state.value}`;
        const jobs = j.jobs;
        list.replaceChildren(jobs.length
            ? table(["Job", "Kind", "Tries", "Last error", "Changed", "Actions"], jobs.map((job) => [
                el("a", { href: `/ui/jobs/${encodeURIComponent(job.id)}` }, job.id),
                job.kind,
                `${job.attempts} of ${job.max_attempts}`,
                job.last_error ?? "-",
                when(job.updated_at),
                jobActions(main, job, load),
            ]))
            : el("p", {}, state.value === "dead" ? "No dead letters: every job either ran or is still trying." : `No job is ${state.value}.`));
    };
    state.addEventListener("change", () => void load().catch((e) => showError(main, e)));
    filter.addEventListener("submit", (ev) => {
        ev.preventDefault();
        void load().catch((e) => showError(main, e));
    });
    try {
        await load();
    }
    catch (e) {
        showError(main, e);
    }
}
function jobActions(main, job, after) {
    const act = (verb) => async () => {
        try {
            const moved = await api("POST", `/v1/jobs/${encodeURIComponent(job.id)}/${verb}`);
            showStatus(main, verb === "retry" ? `${job.id} is ${moved.state} again, with fresh tries.` : `${job.id} is ${moved.state}.`);
            await after();
        }
        catch (e) {
            const verbing = verb === "retry" ? "Retrying" : "Discarding";
            if (e instanceof ApiError && e.status === 403) {
                showError(main, new Error(`${verbing} a job needs the operator role, which this token does not have (${e.detail}).`));
            }
            else
                showError(main, e);
        }
    };
    const out = el("span", { class: "actions" });
    if (job.state === "dead" || job.state === "discarded")
        out.append(button("Retry", act("retry"), "", `Retry ${job.id}`));
    if (job.state === "dead" || job.state === "queued") {
        out.append(" ", button("Discard", act("discard"), "secondary", `Discard ${job.id}`));
    }
    return out;
}
async function jobPage(main, id) {
    const status = statusRegion();
    const body = el("div", {});
    main.append(el("h1", {}, `Job ${id}`), status, body, el("p", {}, el("a", { href: "/ui/jobs" }, "Back to the job queue")));
    const load = async () => {
        const job = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
        const fields = Object.entries(job).filter(([f]) => f !== "payload");
        body.replaceChildren(table(["Field", "Value"], fields.map(([f, v]) => [f, f.endsWith("_at") && typeof v === "number" ? when(v) : v == null ? "-" : String(v)])), el("h2", {}, "Payload"), el("pre", {}, JSON.stringify(job.payload, null, 2)), el("p", {}, jobActions(main, job, load)));
    };
    try {
        await load();
    }
    catch (e) {
        showError(main, e);
    }
}
function replayState(d) {
    if (d.replaying_since)
        return `replay under way since ${when(d.replaying_since)}`;
    if (!d.replays)
        return "not replayed";
    return `${d.replays === 1 ? "1 failed replay" : `${count(d.replays)} failed replays`}, last at ${when(d.replayed_at)}`;
}
function deadLetterRefusal(e, verb) {
    if (!(e instanceof ApiError))
        return e instanceof Error ? e : new Error(String(e));
    const said = e.detail ? ` (${e.detail})` : "";
    if (e.status === 403) {
        return new Error(`${verb === "replay" ? "Replaying" : "Discarding"} a dead letter needs the admin role, which this account does not have${said}.`);
    }
    switch (e.kind) {
        case "dead-letter-truncated":
            return new Error("Not replayed: its body was longer than the route's dead_letter.body_limit and only a part was kept, so a replay would send a different request. Discard it instead.");
        case "dead-letter-unroutable":
            return new Error(`Not replayed: no proxy route takes its URL any more${said}.`);
        case "dead-letter-replaying":
            return new Error("Not replayed: another replay of it is under way and it is never sent twice. Look again once that replay has ended.");
        case "proxy-off":
            return new Error("Not replayed: no reverse proxy is serving on this server.");
        case "dead-letter-not-found":
            return new Error("It is gone: delivered by another replay, or discarded.");
    }
    return e;
}
function deadLetterActions(main, d, after) {
    const told = (text, error = false) => {
        const region = main.querySelector("#status");
        if (error)
            showError(main, new Error(text));
        else
            showStatus(main, text);
        if (region) {
            region.setAttribute("tabindex", "-1");
            region.focus();
        }
    };
    const replay = async () => {
        try {
            const o = await api("POST", `/v1/dead-letters/${encodeURIComponent(d.id)}/replay`);
            if (o.delivered) {
                await after(true);
                told(`Dead letter ${d.id} delivered: the upstream ${o.upstream} answered ${o.status}, and it is removed.`);
            }
            else {
                await after(false);
                const now = o.dead_letter;
                told(`Dead letter ${d.id} failed again (${o.status}): ${o.failure ?? "the upstream did not take it"}. It stays` +
                    (now ? `, after ${count(now.tries)} tries in all.` : "."), true);
            }
        }
        catch (e) {
            told(describe(deadLetterRefusal(e, "replay")), true);
            if (e instanceof ApiError && e.status === 404)
                await after(true).catch(() => undefined);
        }
    };
    const discard = async () => {
        try {
            await api("DELETE", `/v1/dead-letters/${encodeURIComponent(d.id)}`);
            await after(true);
            told(`Dead letter ${d.id} discarded.`);
        }
        catch (e) {
            told(describe(deadLetterRefusal(e, "discard")), true);
        }
    };
    return el("span", { class: "actions" }, button("Replay", () => void replay(), "", `Replay dead letter ${d.id}`), " ", button("Discard", () => void discard(), "secondary", `Discard dead letter ${d.id}`));
}
async function deadLettersPage(main, rest) {
    const here = leaving.signal;
    if (rest[0])
        return deadLetterPage(main, rest[0]);
    const status = statusRegion();
    const route = el("input", { id: "dl-route", type: "text", list: "dl-routes", placeholder: "/v1 or api.example.com/v1", autocomplete: "off" });
    const routes = el("datalist", { id: "dl-routes" });
    const perPage = select("dl-limit", [["10", "10"], ["25", "25"], ["100", "100"]], "25");
    const filter = el("form", { class: "inline", "aria-label": "Filter the dead letters" }, el("label", { for: "dl-route" }, "Route ", route), routes, el("label", { for: "dl-limit" }, "Per page ", perPage), el("button", { type: "submit", class: "secondary" }, "Show"));
    const where = el("p", { id: "dl-page", "aria-live": "polite" });
    const list = el("div", { id: "dl-list" });
    const newer = button("Newer", () => void pager.move(-1), "secondary", "Newer dead letters");
    const older = button("Older", () => void pager.move(1), "secondary", "Older dead letters");
    main.append(el("h1", {}, "Dead letters"), el("p", { class: "hint" }, "Requests the reverse proxy could not deliver on routes that keep them. A replay sends one again through the proxy now; delivered, it is removed."), status, filter, where, list, el("p", { class: "pager" }, newer, " ", older));
    route.value = fromAddress("route");
    choose(perPage, fromAddress("limit"));
    const seen = new Set();
    const load = async () => {
        const before = pager.before;
        const r = route.value.trim();
        const page = await api("GET", "/v1/dead-letters" + query({ route: r, before, limit: perPage.value }));
        toAddress(here, { route: r, limit: perPage.value === "25" ? null : perPage.value, before });
        const letters = page.dead_letters;
        for (const d of letters) {
            if (!seen.has(d.route)) {
                seen.add(d.route);
                routes.append(el("option", { value: d.route }));
            }
        }
        const first = pager.offset(Number(perPage.value));
        where.textContent = letters.length
            ? `Dead letters ${first + 1} to ${first + letters.length}, newest first` + (r ? `, of route ${r}` : "")
            : pager.past
                ? "No older dead letters."
                : r
                    ? `No dead letter of route ${r}.`
                    : "No dead letters: the proxy delivered everything it was given, or nothing was kept.";
        list.replaceChildren(...(letters.length
            ? [
                table(["When", "Route", "Method", "URL", "Upstream failure", "Tries", "Replayed", "Actions"], letters.map((d) => [
                    when(d.at),
                    d.route,
                    d.method,
                    el("a", { href: `/ui/dead-letters/${encodeURIComponent(d.id)}`, "aria-label": `Dead letter ${d.id}: ${d.method} ${d.url}` }, d.url),
                    d.last_failure,
                    count(d.tries),
                    replayState(d),
                    deadLetterActions(main, d, () => load()),
                ]), "The proxy's dead letters"),
            ]
            : []));
        pager.shown(page.next ?? null);
    };
    const pager = new BeforePager(main, newer, older, load);
    perPage.addEventListener("change", pager.restart);
    filter.addEventListener("submit", (ev) => {
        ev.preventDefault();
        pager.restart();
    });
    await pager.start();
}
const BODY_PREVIEW = 4096;
async function deadLetterPage(main, id) {
    const status = statusRegion();
    const body = el("div", { id: "dl-detail" });
    main.append(el("h1", {}, `Dead letter ${id}`), status, body, el("p", {}, el("a", { href: "/ui/dead-letters" }, "Back to the dead letters")));
    const gone = () => body.replaceChildren(el("p", {}, "This dead letter is no longer kept."));
    const load = async (isGone) => {
        if (isGone)
            return gone();
        const d = await api("GET", `/v1/dead-letters/${encodeURIComponent(id)}`);
        const s = d.summary ?? d;
        const text = d.body_text ?? null;
        const size = Number(s.body_size ?? 0);
        const preview = size === 0
            ? el("p", {}, "No body.")
            : text !== null
                ? el("pre", { id: "dl-body", tabindex: "0", "aria-label": "Body" }, text.length > BODY_PREVIEW ? text.slice(0, BODY_PREVIEW) + "…" : text)
                : el("div", {}, el("p", {}, `Not text: ${count(size)} bytes, shown in base64.`), el("pre", { id: "dl-body", tabindex: "0", "aria-label": "Body in base64" }, String(d.body_base64 ?? "").slice(0, BODY_PREVIEW)));
        const headers = d.headers ?? [];
        body.replaceChildren(table(["Field", "Value"], [
            ["When", when(s.at)],
            ["Route", s.route],
            ["Upstream", s.upstream],
            ["Method", s.method],
            ["URL", s.url],
            ["Upstream failure", s.last_failure],
            ["Tries", count(s.tries)],
            ["Replayed", replayState(s)],
            ["Body size", `${count(size)} bytes`],
            ["Body kept cut", s.body_truncated ? "yes: it was longer than the route's limit, so it cannot be replayed" : "no"],
        ], "The request"), el("h2", {}, "Headers"), headers.length
            ? table(["Name", "Value"], headers.map((h) => [h.name, h.value]), "Headers as forwarded, credentials and cookies left out")
            : el("p", {}, "No headers were kept."), el("h2", {}, "Body"), preview, el("p", {}, deadLetterActions(main, s, (g) => load(g))));
    };
    try {
        await load(false);
    }
    catch (e) {
        if (e instanceof ApiError && e.status === 404)
            gone();
        showError(main, e);
    }
}
const pages = [
    { path: "overview", title: "Overview", render: overviewPage },
    { path: "keys", title: "Keys", render: keysPage },
    { path: "policy", title: "Policy", render: policyPage },
    { path: "violations", title: "Violations", render: violationsPage },
    { path: "alerts", title: "Alerts", render: alertsPage },
    { path: "billing", title: "Billing", render: billingPage },
    { path: "jobs", title: "Jobs", render: jobsPage },
    { path: "dead-letters", title: "Dead letters", render: deadLettersPage },
    { path: "audit", title: "Audit log", render: auditPage },
];
let provider = null;
const SIGN_IN_ERRORS = {
    denied: "The sign-in was refused at the identity provider.",
    expired: "The sign-in took too long or was not started in this browser. Try again.",
    state: "The identity provider's answer did not belong to this sign-in. Try again.",
    unavailable: "The identity provider could not be reached. Try again later, or sign in with a token.",
    token: "The identity provider's token was refused; the server's log says why.",
    "no-role": "You signed in, but your account has no Tollgate role. Ask an administrator for one.",
    provider: "The identity provider reported an error.",
    off: "Sign-in with an identity provider is not configured.",
};
async function loadSession() {
    try {
        const res = await fetch("/ui/auth/session", { credentials: "same-origin" });
        const s = res.ok ? await res.json() : null;
        provider = s?.oidc ?? null;
        session = s?.signed_in ? { actor: s.actor, role: s.role, csrf: s.csrf } : null;
    }
    catch {
        session = null;
    }
}
function signIn(main) {
    const input = el("input", { id: "token", type: "password", autocomplete: "off", required: "" });
    const status = statusRegion();
    const form = el("form", { "aria-label": "Sign in" }, el("h1", {}, "Sign in"), el("label", { for: "token" }, "Admin token ", input), el("button", { type: "submit" }, "Sign in"), status);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        token = input.value;
        try {
            await api("GET", "/v1/tiers");
            go(location.pathname.length > 4 ? location.pathname + location.search : "/ui/overview");
        }
        catch (e) {
            token = null;
            showError(main, e);
        }
    });
    main.append(form);
    if (provider) {
        const here = location.pathname + location.search;
        const back = /^\/ui\/[^?]/.test(here) ? `?return_to=${encodeURIComponent(here)}` : "";
        main.append(el("p", { class: "or" }, "or"), el("a", { class: "button", id: "oidc-sign-in", href: provider.login + back }, `Sign in with ${provider.name}`));
    }
    const failed = new URLSearchParams(location.search).get("signin_error");
    if (failed) {
        status.textContent = SIGN_IN_ERRORS[failed] ?? "The sign-in failed.";
        status.className = "error";
        history.replaceState(null, "", location.pathname);
    }
    input.focus();
}
function go(path) {
    history.pushState(null, "", path);
    void route(true);
}
async function route(moved = false) {
    const main = document.getElementById("main");
    const nav = document.getElementById("nav");
    const who = document.getElementById("who");
    leaving.abort();
    leaving = new AbortController();
    main.replaceChildren();
    const parts = location.pathname.replace(/^\/ui\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (!token && !session) {
        nav.replaceChildren();
        who.replaceChildren();
        return signIn(main);
    }
    const page = pages.find((p) => p.path === parts[0]) ?? pages[0];
    nav.replaceChildren(...pages.map((p) => el("a", p === page ? { href: `/ui/${p.path}`, "aria-current": "page" } : { href: `/ui/${p.path}` }, p.title)));
    who.replaceChildren(...(session && !token ? [el("span", { id: "actor" }, `${session.actor} (${session.role})`), " "] : []), button("Sign out", () => void signOut(), "secondary"));
    document.title = `${page.title} · Tollgate`;
    if (moved)
        main.focus({ preventScroll: false });
    await page.render(main, parts.slice(1));
}
async function signOut() {
    if (!token && session) {
        await fetch("/ui/auth/logout", {
            method: "POST",
            headers: { "x-tollgate-csrf": session.csrf },
            credentials: "same-origin",
        }).catch(() => undefined);
    }
    token = null;
    session = null;
    go("/ui/");
}
document.addEventListener("click", (ev) => {
    const a = ev.target.closest?.("a");
    const href = a?.getAttribute("href");
    if (!a || !href || ev.metaKey || ev.ctrlKey || ev.shiftKey)
        return;
    if (href.startsWith("/ui/") && !href.startsWith("/ui/auth/")) {
        ev.preventDefault();
        go(href);
    }
    else if (href.startsWith("#")) {
        const target = document.getElementById(href.slice(1));
        if (target) {
            ev.preventDefault();
            if (!target.hasAttribute("tabindex") && !/^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(target.tagName)) {
                target.setAttribute("tabindex", "-1");
            }
            target.focus();
        }
    }
});
window.addEventListener("popstate", () => void route(true));
void loadSession().then(() => route());
