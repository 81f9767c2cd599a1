// Keys: the list with its filters, creating a key, and a key's own page (its record,
// tier, overrides, limits, usage and violations).

async function keysPage(main: HTMLElement, rest: string[]) {
  const here = leaving.signal;
  if (rest[0]) return keyPage(main, rest[0]);
  const status = statusRegion();
  const name = el("input", { id: "new-name", required: "" });
  const owner = el("input", { id: "new-owner", required: "", list: "owner-list" });
  const tier = el("input", { id: "new-tier", list: "tier-list" });
  const create = el(
    "form",
    { class: "inline", "aria-label": "Create a key" },
    el("label", { for: "new-name" }, "Name ", name),
    el("label", { for: "new-owner" }, "Owner ", owner),
    el("label", { for: "new-tier" }, "Tier ", tier),
    el("button", { type: "submit" }, "Create key"),
  );
  const secret = el("div", { id: "secret", "aria-live": "polite" });

  // Status, tier and owner are asked of the server; the search narrows what came back.
  const search = el("input", { id: "search", type: "search", autocomplete: "off" });
  const byStatus = select("filter-status", [
    ["", "any status"],
    ["active", "active"],
    ["disabled", "disabled"],
    ["revoked", "revoked"],
  ]);
  const byTier = select("filter-tier", [["", "any tier"]]);
  const byOwner = el("input", { id: "filter-owner", list: "owner-list", autocomplete: "off" });
  const filters = el(
    "form",
    { class: "inline", role: "search", "aria-label": "Filter keys" },
    el("label", { for: "search" }, "Search ", search),
    el("label", { for: "filter-status" }, "Status ", byStatus),
    el("label", { for: "filter-tier" }, "Tier ", byTier),
    el("label", { for: "filter-owner" }, "Owner ", byOwner),
    el("button", { type: "submit", class: "secondary" }, "Filter"),
  );
  const owners = el("datalist", { id: "owner-list" });
  const tierList = el("datalist", { id: "tier-list" });
  const shownCount = el("p", { id: "key-count", "aria-live": "polite" });
  const list = el("div", { id: "list" });
  const more = el("p", {});
  main.append(
    el("h1", {}, "Keys"),
    status,
    el("h2", {}, "Create a key"),
    create,
    secret,
    el("h2", {}, "Every key"),
    filters,
    shownCount,
    list,
    more,
    owners,
    tierList,
  );

  search.value = fromAddress("q");
  choose(byStatus, fromAddress("status"));
  byOwner.value = fromAddress("owner");
  let keys: any[] = [];
  let next: string | null = null;
  const draw = () => {
    toAddress(here, { q: search.value.trim(), status: byStatus.value, tier: byTier.value, owner: byOwner.value.trim() });
    const q = search.value.trim().toLowerCase();
    const shown = keys.filter((k) =>
      [k.id, k.name, k.tier, k.owner].some((f) => String(f ?? "").toLowerCase().includes(q)),
    );
    shownCount.textContent =
      `${shown.length} ${shown.length === 1 ? "key" : "keys"}` + (q ? ` matching “${search.value.trim()}”` : "") +
      (next ? `, of the first ${keys.length} loaded` : "");
    list.replaceChildren(
      shown.length
        ? table(
            ["Name", "Id", "Owner", "Tier", "Status", "Created", "Last used"],
            shown.map((k) => [
              el("a", { href: `/ui/keys/${encodeURIComponent(k.id)}` }, k.name || k.id),
              k.id,
              k.owner,
              k.tier,
              String(k.status),
              when(k.created_at),
              when(k.last_used_at),
            ]),
          )
        : el("p", {}, "No key matches."),
    );
    more.replaceChildren(
      ...(next ? [button("Load more keys", () => void load(true).catch((e) => showError(main, e)), "secondary")] : []),
    );
    const known = new Set(keys.map((k) => k.owner));
    for (const o of Array.from(owners.querySelectorAll("option"))) known.delete(o.value);
    for (const o of known) owners.append(el("option", { value: o }));
  };
  const load = async (append = false) => {
    const page = await api(
      "GET",
      "/v1/keys" +
        query({
          status: byStatus.value,
          tier: byTier.value,
          owner: byOwner.value.trim(),
          after: append ? next : null,
          limit: 1000,
        }),
    );
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
      const body: Record<string, unknown> = { name: name.value, owner: owner.value };
      if (tier.value) body.tier = tier.value;
      const made = await api("POST", "/v1/keys", body);
      showSecret(secret, made.secret);
      showStatus(main, `Created ${made.key.id}`);
      await load();
    } catch (e) {
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
    for (const o of known.owners) owners.append(el("option", { value: o.id }, o.name ?? o.id));
    await load();
  } catch (e) {
    showError(main, e);
  }
}

/// The names of the tiers of a `GET /v1/tiers` answer, which lists them by name or as
/// records with a name.
function tierNames(answer: any): string[] {
  const t = answer?.tiers;
  if (Array.isArray(t)) return t.map((x: any) => (typeof x === "string" ? x : x.name)).filter(Boolean);
  return t && typeof t === "object" ? Object.keys(t) : [];
}

/// The secret of a key just made or rotated: shown this once, with a copy button.
function showSecret(into: HTMLElement, secret: string) {
  const code = el("code", { class: "secret", id: "secret-value" }, secret);
  into.replaceChildren(
    el("p", {}, "The key's secret, shown this once: "),
    code,
    " ",
    button("Copy", () => void navigator.clipboard?.writeText(secret), "secondary"),
  );
}

async function keyPage(main: HTMLElement, id: string) {
  const status = statusRegion();
  const secret = el("div", { id: "secret", "aria-live": "polite" });
  main.append(el("h1", {}, `Key ${id}`), status, secret);
  const path = `/v1/keys/${encodeURIComponent(id)}`;
  try {
    const k = await api("GET", path);
    const record = el("div", {});
    const drawRecord = (k: any) =>
      record.replaceChildren(
        table(
          ["Field", "Value"],
          Object.entries(k).map(([f, v]) => [
            f,
            f.endsWith("_at") && typeof v === "number" ? when(v) : typeof v === "object" ? JSON.stringify(v) : String(v),
          ]),
        ),
      );
    drawRecord(k);
    main.append(
      record,
      el(
        "p",
        {},
        button("Rotate", async () => {
          try {
            const r = await api("POST", `${path}/rotate`, {});
            showSecret(secret, r.secret);
          } catch (e) {
            showError(main, e);
          }
        }),
        " ",
        button("Revoke", async () => {
          try {
            await api("DELETE", path);
            showStatus(main, "Revoked");
          } catch (e) {
            showError(main, e);
          }
        }, "secondary"),
      ),
    );
    const tierInput = el("input", { id: "key-tier", value: String(k.tier ?? ""), list: "key-tier-list" });
    const tierList = el("datalist", { id: "key-tier-list" });
    api("GET", "/v1/tiers")
      .then((t) => tierList.append(...tierNames(t).map((n) => el("option", { value: n }))))
      .catch(() => undefined);
    const tierForm = el(
      "form",
      { class: "inline", "aria-label": "Change tier" },
      el("label", { for: "key-tier" }, "Tier ", tierInput),
      tierList,
      el("button", { type: "submit" }, "Change tier"),
    );
    const limits = el("div", { id: "key-limits" });
    const drawLimits = async () => {
      const l = await api("GET", `${path}/limits`);
      limits.replaceChildren(
        l.limits.length
          ? table(
              ["Limit", "From", "Algorithm", "Allows", "Window", "Counter"],
              l.limits.map((x: any) => [
                x.name,
                x.source,
                x.algorithm,
                count(x.limit),
                x.window_ms == null ? "-" : seconds(Math.round(x.window_ms / 1000)),
                x.counter ?? "-",
              ]),
            )
          : el("p", {}, "No limit of its tier or its own applies to this key."),
      );
    };
    tierForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const changed = await api("PATCH", path, { tier: tierInput.value });
        showStatus(main, `Tier is now ${changed.tier}`);
        drawRecord(changed);
        await drawLimits();
      } catch (e) {
        showError(main, e);
      }
    });
    main.append(
      tierForm,
      overridesEditor(main, path, k.overrides, (changed) => {
        drawRecord(changed);
        return drawLimits();
      }),
      el("h2", {}, "Limits in force"),
      limits,
      usageChart(path),
      keyViolations(id),
    );
    drawLimits().catch((e) => limits.replaceChildren(el("p", { class: "error" }, describe(e))));
    const usage = await api("GET", `${path}/usage`).catch(() => null);
    if (usage) main.append(el("h2", {}, "Usage now"), el("pre", {}, JSON.stringify(usage, null, 2)));
  } catch (e) {
    showError(main, e);
  }
}

/// The key's own limits as JSON, saved with `PATCH /v1/keys/{id}`. The server checks
/// them over the key's tier; each error it finds is listed under the field by its path.
function overridesEditor(
  main: HTMLElement,
  path: string,
  current: unknown,
  saved: (key: any) => Promise<void>,
): HTMLElement {
  const area = el("textarea", {
    id: "key-overrides",
    rows: "6",
    cols: "60",
    spellcheck: "false",
    "aria-describedby": "overrides-help overrides-errors",
  });
  area.value = JSON.stringify(current ?? {}, null, 2);
  const errors = el("div", { id: "overrides-errors" });
  const form = el(
    "form",
    { "aria-label": "Overrides" },
    el("label", { for: "key-overrides" }, "Overrides (JSON)"),
    el(
      "p",
      { id: "overrides-help", class: "hint" },
      'Limits of the tier to change, by name, and limits of the key\'s own: {"requests": {"limit": 5000}} ' +
        "changes only the fields given; null drops one; {} clears every override.",
    ),
    area,
    errors,
    el("p", {}, el("button", { type: "submit" }, "Save overrides")),
  );
  const fail = (lines: string[]) => {
    area.setAttribute("aria-invalid", "true");
    errors.replaceChildren(el("ul", { class: "error" }, ...lines.map((l) => el("li", {}, l))));
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let overrides: unknown;
    try {
      overrides = JSON.parse(area.value.trim() || "{}");
    } catch (e) {
      return fail([`Not JSON: ${e instanceof Error ? e.message : String(e)}`]);
    }
    try {
      const changed = await api("PATCH", path, { overrides });
      area.removeAttribute("aria-invalid");
      errors.replaceChildren();
      area.value = JSON.stringify(changed.overrides ?? {}, null, 2);
      showStatus(main, "Overrides saved");
      await saved(changed);
    } catch (e) {
      if (e instanceof ApiError && e.errors.length) fail(e.errors.map((x) => `${x.path}: ${x.message}`));
      else fail([describe(e)]);
    }
  });
  return el("section", { "aria-labelledby": "overrides-title" }, el("h2", { id: "overrides-title" }, "Overrides"), form);
}

/// The denials recorded for one key, oldest first, a page at a time.
function keyViolations(id: string): HTMLElement {
  const body = el("div", { id: "key-violations" });
  const more = el("p", {});
  let rows: any[] = [];
  const load = async (after: number | null) => {
    const v = await api("GET", "/v1/violations" + query({ key_id: id, after, limit: 50 }));
    rows = rows.concat(v.violations);
    body.replaceChildren(
      rows.length
        ? table(
            ["At", "Rule", "Code", "Subject"],
            rows.map((x) => [when(x.at), x.rule || "-", x.code, JSON.stringify(x.subject ?? {})]),
          )
        : el("p", {}, "This key has not been denied."),
    );
    more.replaceChildren(
      ...(v.next != null
        ? [button("More violations", () => void load(v.next).catch((e) => (body.textContent = describe(e))), "secondary")]
        : []),
    );
  };
  void load(null).catch((e) => body.replaceChildren(el("p", { class: "error" }, describe(e))));
  return el("section", { "aria-labelledby": "violations-title" }, el("h2", { id: "violations-title" }, "Violations"), body, more);
}


/// How far back each granularity's chart reaches.
const RANGES: Record<string, number> = { minute: 3_600_000, hour: 86_400_000, day: 30 * 86_400_000 };

/// A key's usage per minute, hour or day as bars of allowed and denied decisions, drawn
/// as SVG (no chart library), with a caption that sums the range for readers of text.
function usageChart(keyPath: string): HTMLElement {
  const select = el("select", { id: "granularity" });
  for (const g of Object.keys(RANGES)) select.append(el("option", { value: g }, `per ${g}`));
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
    const buckets: any[] = h.buckets;
    const max = Math.max(1, ...buckets.map((b) => b.requests));
    const width = 600 / Math.max(buckets.length, 30);
    svg.replaceChildren();
    buckets.forEach((b, i) => {
      const bar = (value: number, base: number, cls: string) => {
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
    const sum = (f: string) => buckets.reduce((n, b) => n + b[f], 0);
    caption.textContent = `${sum("requests")} requests (${sum("allowed")} allowed, ${sum("denied")} denied) ${
      g === "day" ? "in the last 30 days" : g === "hour" ? "in the last day" : "in the last hour"
    }, per ${g}`;
  };
  select.addEventListener("change", () => void draw().catch((e) => (caption.textContent = String(e))));
  const refresh = button("Refresh", () => void draw().catch((e) => (caption.textContent = String(e))), "secondary");
  void draw().catch((e) => (caption.textContent = String(e)));
  return el(
    "section",
    { "aria-label": "Usage" },
    el("h2", {}, "Usage"),
    el("label", { for: "granularity" }, "Granularity ", select),
    " ",
    refresh,
    svg,
    caption,
  );
}
