// Billing: an owner's current period as it stands, and the records of closed periods
// with their export.

async function billingPage(main: HTMLElement) {
  const here = leaving.signal;
  const status = statusRegion();
  const owner = select("billing-owner", []);
  const picker = el(
    "form",
    { class: "inline", "aria-label": "Choose an owner" },
    el("label", { for: "billing-owner" }, "Owner ", owner),
    el("button", { type: "submit", class: "secondary" }, "Show"),
  );
  const current = el("div", { id: "billing-current" });
  const closed = el("div", { id: "billing-records" });
  const download = el("p", {});
  main.append(
    el("h1", {}, "Billing"),
    status,
    picker,
    el("h2", {}, "This period so far"),
    current,
    el("h2", {}, "Closed periods"),
    download,
    closed,
  );

  const show = async () => {
    const o = owner.value;
    if (!o) return;
    toAddress(here, { owner: o });
    const path = `/v1/owners/${encodeURIComponent(o)}/billing/current`;
    const [now, records] = await Promise.all([
      api("GET", path),
      api("GET", "/v1/billing/records" + query({ owner: o })),
    ]);
    const lines: any[] = now.lines;
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
    current.replaceChildren(
      ...(lines.length
        ? [
            table(head, rows, `${o}: the current period, projected from the usage so far`),
            el(
              "p",
              { id: "billing-total" },
              now.total != null
                ? `Total so far: ${money(now.total, lines[0].currency)}`
                : "The lines are in more than one currency, so they have no single total.",
            ),
          ]
        : [el("p", {}, `${o} has no live key on a billed tier this period.`)]),
    );
    const rs: any[] = records.records;
    closed.replaceChildren(
      rs.length
        ? table(
            ["Period (UTC)", "Tier", "Units", "Included", "Beyond", "Base fee", "Overage", "Amount", "Closed"],
            rs.map((r) => [
              `${when(r.period_start)} to ${when(r.period_end)}`,
              now.scope === "key" ? `${r.tier} (key ${r.account})` : r.tier,
              count(r.units),
              count(r.included),
              count(r.overage_units),
              money(r.base_fee, r.currency),
              money(r.overage_amount, r.currency),
              money(r.amount, r.currency),
              when(r.closed_at),
            ]),
            `${o}: records of closed periods, oldest first`,
          )
        : el("p", {}, `No period of ${o} has been closed yet.`),
    );
    // The export needs the token too, so it is fetched here and handed over as a file
    // rather than linked (a link could not send the Authorization header).
    download.replaceChildren(
      button("Download CSV", async () => {
        try {
          const blob = await apiBlob("/v1/billing/records" + query({ owner: o, format: "csv" }));
          const url = URL.createObjectURL(blob);
          const a = el("a", { href: url, download: `billing-${o}.csv` });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10_000);
          showStatus(main, `Downloaded billing-${o}.csv`);
        } catch (e) {
          showError(main, e);
        }
      }, "secondary", `Download CSV of ${o}'s closed periods`),
    );
  };
  const run = () =>
    void show().catch((e) => {
      if (e instanceof ApiError && e.status === 404 && /billing/i.test(e.title + e.detail)) {
        current.replaceChildren(el("p", {}, "Billing is not configured on this server: add a billing section with a plan per tier."));
        closed.replaceChildren();
        download.replaceChildren();
      } else showError(main, e);
    });
  owner.addEventListener("change", run);
  picker.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run();
  });

  try {
    // Owners with a record, and owners of keys that have none: both may be billed.
    const [records, keys] = await Promise.all([
      api("GET", "/v1/owners?limit=1000"),
      api("GET", "/v1/keys?limit=1000"),
    ]);
    const names = new Map<string, string>();
    for (const o of records.owners) names.set(o.id, o.name && o.name !== o.id ? `${o.id} (${o.name})` : o.id);
    for (const k of keys.keys) if (!names.has(k.owner)) names.set(k.owner, k.owner);
    const sorted = [...names.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    if (!sorted.length) {
      current.replaceChildren(el("p", {}, "No owner yet: create a key or an owner record first."));
      return;
    }
    for (const [id, text] of sorted) owner.append(el("option", { value: id }, text));
    owner.value = sorted[0][0];
    choose(owner, fromAddress("owner"));
    run();
  } catch (e) {
    showError(main, e);
  }
}
