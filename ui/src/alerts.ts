// Alerts: the rules configured, what is firing now, and the history of firing and
// resolving, a page at a time.

/// What a rule watches, in words.
function watches(r: any): string {
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
  if (r.failing) return `the ${r.failing} does not answer`;
  return "-";
}

async function alertsPage(main: HTMLElement) {
  const here = leaving.signal;
  const status = statusRegion();
  const rules = el("div", { id: "alert-rules" });
  const firing = el("div", { id: "alert-firing" });
  const byRule = select("alert-rule", [["", "every rule"]]);
  const perPage = select("alert-limit", [["10", "10"], ["25", "25"], ["100", "100"]], "25");
  const filter = el(
    "form",
    { class: "inline", "aria-label": "Filter the history" },
    el("label", { for: "alert-rule" }, "Rule ", byRule),
    el("label", { for: "alert-limit" }, "Per page ", perPage),
    el("button", { type: "submit", class: "secondary" }, "Show"),
  );
  const where = el("p", { id: "alert-page", "aria-live": "polite" });
  const history = el("div", { id: "alert-history" });
  const newer = button("Newer events", () => void pager.move(-1), "secondary");
  const older = button("Older events", () => void pager.move(1), "secondary");
  main.append(
    el("h1", {}, "Alerts"),
    status,
    el("h2", {}, "Rules"),
    rules,
    el("h2", {}, "Firing now"),
    firing,
    el("h2", {}, "History"),
    filter,
    where,
    history,
    el("p", { class: "pager" }, newer, " ", older),
  );

  choose(byRule, fromAddress("rule"));
  choose(perPage, fromAddress("limit"));
  let named = false;
  const load = async () => {
    const before = pager.before;
    const a = await api("GET", "/v1/alerts" + query({ rule: byRule.value, before, limit: perPage.value }));
    toAddress(here, { rule: byRule.value, limit: perPage.value === "25" ? null : perPage.value, before });
    if (!named) {
      named = true;
      const names = new Set<string>(a.rules.map((r: any) => r.name));
      for (const n of names) if (!Array.from(byRule.options).some((o) => o.value === n)) byRule.append(el("option", { value: n }, n));
    }
    rules.replaceChildren(
      a.rules.length
        ? table(
            ["Rule", "Watches", "Severity", "Channels", "Tells the owner"],
            a.rules.map((r: any) => [r.name, watches(r), r.severity, (r.channels ?? []).join(", ") || "-", r.outreach ? "yes" : "no"]),
          )
        : el("p", {}, "No alert rules are configured: add an alerts section to the configuration."),
    );
    firing.replaceChildren(
      a.firing.length
        ? table(
            ["Rule", "About", "Since", "Value"],
            a.firing.map((f: any) => [f.rule, f.subject, when(f.since), String(f.value)]),
          )
        : el("p", {}, byRule.value ? `Nothing of ${byRule.value} is firing.` : "Nothing is firing."),
    );
    const events: any[] = a.events;
    const first = pager.offset(Number(perPage.value));
    where.textContent = events.length
      ? `Events ${first + 1} to ${first + events.length}, newest first` + (byRule.value ? `, of ${byRule.value}` : "")
      : pager.past
        ? "No older events."
        : "No alert has fired yet.";
    history.replaceChildren(
      ...(events.length
        ? [
            table(
              ["At", "Rule", "About", "Event", "Severity", "Value", "Summary"],
              events.map((e) => [
                when(e.at),
                e.rule,
                e.subject,
                el("span", { class: `event ${e.event}` }, e.event),
                e.severity,
                String(e.value),
                e.summary,
              ]),
            ),
          ]
        : []),
    );
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
