"use strict";
let token = null;
let leaving = new AbortController();
class ApiError extends Error {
    status;
    title;
    detail;
    constructor(status, title, detail) {
        super(`${status} ${title}${detail ? ": " + detail : ""}`);
        this.status = status;
        this.title = title;
        this.detail = detail;
    }
}
async function api(method, path, body) {
    const headers = { authorization: `Bearer ${token ?? ""}` };
    if (body !== undefined)
        headers["content-type"] = "application/json";
    const res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
        throw new ApiError(res.status, data?.title ?? res.statusText, data?.detail ?? "");
    }
    return data;
}
function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs))
        e.setAttribute(k, v);
    for (const c of children)
        e.append(c);
    return e;
}
function button(text, onClick, cls = "") {
    const b = el("button", cls ? { type: "button", class: cls } : { type: "button" }, text);
    b.addEventListener("click", onClick);
    return b;
}
function showError(main, e) {
    const region = main.querySelector("#status") ?? main;
    region.textContent = e instanceof Error ? e.message : String(e);
    region.className = "error";
}
function table(head, rows) {
    return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}
function when(ms) {
    return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-";
}
const pages = [
    { path: "overview", title: "Overview", render: overviewPage },
    { path: "keys", title: "Keys", render: keysPage },
    { path: "policy", title: "Policy", render: policyPage },
    { path: "violations", title: "Violations", render: violationsPage },
    { path: "audit", title: "Audit log", render: auditPage },
];
async function events(path, signal, on) {
    const res = await fetch(path, {
        headers: { authorization: `Bearer ${token ?? ""}`, accept: "text/event-stream" },
        credentials: "omit",
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
    if (rest[0])
        return keyPage(main, rest[0]);
    const status = el("p", { id: "status", role: "status" });
    const search = el("input", { id: "search", type: "search" });
    const name = el("input", { id: "new-name", required: "" });
    const owner = el("input", { id: "new-owner", required: "" });
    const tier = el("input", { id: "new-tier" });
    const create = el("form", { class: "inline", "aria-label": "Create a key" }, el("label", { for: "new-name" }, "Name ", name), el("label", { for: "new-owner" }, "Owner ", owner), el("label", { for: "new-tier" }, "Tier ", tier), el("button", { type: "submit" }, "Create key"));
    const secret = el("div", { id: "secret", "aria-live": "polite" });
    const list = el("div", { id: "list" });
    main.append(el("h1", {}, "Keys"), status, create, secret, el("label", { for: "search" }, "Search ", search), list);
    let keys = [];
    const draw = () => {
        const q = search.value.toLowerCase();
        const shown = keys.filter((k) => [k.id, k.name, k.tier, k.owner].some((f) => String(f ?? "").toLowerCase().includes(q)));
        list.replaceChildren(table(["Name", "Id", "Owner", "Tier", "Status", "Created"], shown.map((k) => [
            el("a", { href: `/ui/keys/${encodeURIComponent(k.id)}` }, k.name ?? k.id),
            k.id,
            k.owner,
            k.tier,
            String(k.status),
            when(k.created_at),
        ])));
    };
    search.addEventListener("input", draw);
    create.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
            const body = { name: name.value, owner: owner.value };
            if (tier.value)
                body.tier = tier.value;
            const made = await api("POST", "/v1/keys", body);
            showSecret(secret, made.secret);
            status.textContent = `Created ${made.key.id}`;
            status.className = "";
            await load();
        }
        catch (e) {
            showError(main, e);
        }
    });
    const load = async () => {
        const page = await api("GET", "/v1/keys?limit=200");
        keys = page.keys;
        draw();
    };
    try {
        await load();
    }
    catch (e) {
        showError(main, e);
    }
}
function showSecret(into, secret) {
    const code = el("code", { class: "secret", id: "secret-value" }, secret);
    into.replaceChildren(el("p", {}, "The key's secret, shown this once: "), code, " ", button("Copy", () => void navigator.clipboard?.writeText(secret), "secondary"));
}
async function keyPage(main, id) {
    const status = el("p", { id: "status", role: "status" });
    const secret = el("div", { id: "secret", "aria-live": "polite" });
    main.append(el("h1", {}, `Key ${id}`), status, secret);
    const path = `/v1/keys/${encodeURIComponent(id)}`;
    try {
        const key = await api("GET", path);
        const k = key;
        main.append(table(["Field", "Value"], Object.entries(k).map(([f, v]) => [f, typeof v === "object" ? JSON.stringify(v) : String(v)])), el("p", {}, button("Rotate", async () => {
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
                status.textContent = "Revoked";
                status.className = "";
            }
            catch (e) {
                showError(main, e);
            }
        }, "secondary")));
        const tierInput = el("input", { id: "key-tier", value: String(k.tier ?? "") });
        const tierForm = el("form", { class: "inline", "aria-label": "Change tier" }, el("label", { for: "key-tier" }, "Tier ", tierInput), el("button", { type: "submit" }, "Change tier"));
        tierForm.addEventListener("submit", async (ev) => {
            ev.preventDefault();
            try {
                const changed = await api("PATCH", path, { tier: tierInput.value });
                status.textContent = `Tier is now ${changed.tier}`;
                status.className = "";
            }
            catch (e) {
                showError(main, e);
            }
        });
        main.append(tierForm, usageChart(path));
        const usage = await api("GET", `${path}/usage`).catch(() => null);
        if (usage)
            main.append(el("h2", {}, "Usage now"), el("pre", {}, JSON.stringify(usage, null, 2)));
    }
    catch (e) {
        showError(main, e);
    }
}
const SVG = "http://www.w3.org/2000/svg";
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
    const status = el("p", { id: "status", role: "status" });
    main.append(el("h1", {}, "Policy"), status, tryPanel());
    try {
        const tiers = await api("GET", "/v1/tiers");
        main.append(el("h2", {}, "Tiers"), el("pre", {}, JSON.stringify(tiers.tiers, null, 2)));
        const config = await api("GET", "/v1/config").catch(() => null);
        if (config)
            main.append(el("h2", {}, "Rules in force"), el("pre", {}, JSON.stringify(config, null, 2)));
    }
    catch (e) {
        showError(main, e);
    }
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
function signIn(main) {
    const input = el("input", { id: "token", type: "password", autocomplete: "off", required: "" });
    const status = el("p", { id: "status", role: "status" });
    const form = el("form", { "aria-label": "Sign in" }, el("h1", {}, "Sign in"), el("label", { for: "token" }, "Admin token ", input), el("button", { type: "submit" }, "Sign in"), status);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        token = input.value;
        try {
            await api("GET", "/v1/tiers");
            go(location.pathname.length > 4 ? location.pathname : "/ui/overview");
        }
        catch (e) {
            token = null;
            showError(main, e);
        }
    });
    main.append(form);
    input.focus();
}
function go(path) {
    history.pushState(null, "", path);
    void route();
}
async function route() {
    const main = document.getElementById("main");
    const nav = document.getElementById("nav");
    const who = document.getElementById("who");
    leaving.abort();
    leaving = new AbortController();
    main.replaceChildren();
    const parts = location.pathname.replace(/^\/ui\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (!token) {
        nav.replaceChildren();
        who.replaceChildren();
        return signIn(main);
    }
    const page = pages.find((p) => p.path === parts[0]) ?? pages[0];
    nav.replaceChildren(...pages.map((p) => el("a", p === page ? { href: `/ui/${p.path}`, "aria-current": "page" } : { href: `/ui/${p.path}` }, p.title)));
    who.replaceChildren(button("Sign out", () => {
        token = null;
        go("/ui/");
    }, "secondary"));
    document.title = `${page.title} · Tollgate`;
    await page.render(main, parts.slice(1));
}
document.addEventListener("click", (ev) => {
    const a = ev.target.closest?.("a");
    if (a && a.getAttribute("href")?.startsWith("/ui/") && !ev.metaKey && !ev.ctrlKey) {
        ev.preventDefault();
        go(a.getAttribute("href"));
    }
});
window.addEventListener("popstate", () => void route());
void route();
