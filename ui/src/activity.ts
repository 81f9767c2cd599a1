// Violations and the audit log: what was denied, and what was changed by whom.

async function violationsPage(main: HTMLElement) {
  const status = el("p", { id: "status", role: "status" });
  main.append(el("h1", {}, "Violations"), status);
  try {
    const v = await api("GET", "/v1/violations?limit=100");
    const items: any[] = v.violations;
    main.append(
      table(
        ["At", "Key", "Rule", "Code"],
        items.map((i) => [when(i.at), i.key_id ?? "-", i.rule, i.code]),
      ),
    );
  } catch (e) {
    showError(main, e);
  }
}

async function auditPage(main: HTMLElement) {
  const status = el("p", { id: "status", role: "status" });
  main.append(el("h1", {}, "Audit log"), status);
  try {
    const a = await api("GET", "/v1/audit?limit=100");
    const items: any[] = a.entries;
    main.append(
      table(
        ["At", "Actor", "Role", "Action", "Target", "Status"],
        items.map((i) => [when(i.at), i.actor, i.role, i.action, i.target, String(i.status)]),
      ),
    );
  } catch (e) {
    showError(main, e);
  }
}
