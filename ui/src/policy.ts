// Policy: the tiers and rules in force, "try a request", and (for the admin role) an
// editor of the policy that shows each validation error at its path.

async function policyPage(main: HTMLElement) {
  const status = statusRegion();
  main.append(el("h1", {}, "Policy"), status, tryPanel());
  try {
    const config = await api("GET", "/v1/config");
    const rules = el("div", { id: "policy-rules" });
    const tiers = el("div", { id: "policy-tiers" });
    const inForce = el("pre", { id: "policy-json" });
    const draw = (policy: any) => {
      rules.replaceChildren(limitsTable(policy.rules, "The policy has no rules.", "Rule"));
      const named = Object.entries(policy.tiers ?? {});
      tiers.replaceChildren(
        ...(named.length
          ? named.map(([name, t]: [string, any]) =>
              limitsTable(t.limits, `${name} has no limits.`, "Limit", t.description ? `${name}: ${t.description}` : name),
            )
          : [el("p", {}, "The policy defines no tiers.")]),
      );
      inForce.textContent = JSON.stringify(policy, null, 2);
    };
    draw(config);
    main.append(
      el("h2", {}, "Rules in force"),
      rules,
      el("h2", {}, "Tiers"),
      tiers,
      el("details", {}, el("summary", {}, "The whole policy in force, as JSON"), inForce),
    );
    const section = el("section", { "aria-labelledby": "edit-title" }, el("h2", { id: "edit-title" }, "Edit the policy"));
    main.append(section);
    if (await isAdmin()) {
      section.append(policyEditor(main, config, draw));
    } else {
      section.append(
        el("p", { id: "edit-refused" }, "Changing the policy needs the admin role; this token may read it only."),
      );
    }
  } catch (e) {
    showError(main, e);
  }
}

/// Rules (or a tier's limits) as a table: the fields every limit has in columns of their
/// own, the rest together.
function limitsTable(list: any, none: string, first: string, caption = ""): HTMLElement {
  if (!Array.isArray(list) || !list.length) return el("p", {}, none);
  const main = ["name", "algorithm", "limit", "period", "key", "match"];
  return table(
    [first, "Algorithm", "Limit", "Period", "Counter key", "Matches", "Also"],
    list.map((r: any) => [
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
    ]),
    caption,
  );
}

/// Whether the token has the admin role, asked of the server once per token: the audit
/// log is the admin's alone, and reading it changes nothing (a database-less server
/// answers it 404, after the role check).
let adminOf: { who: string | null; admin: Promise<boolean> } | null = null;
function isAdmin(): Promise<boolean> {
  if (!adminOf || adminOf.who !== signedInAs()) {
    adminOf = {
      who: signedInAs(),
      admin: api("GET", "/v1/audit?limit=1").then(
        () => true,
        (e) => !(e instanceof ApiError && (e.status === 403 || e.status === 401)),
      ),
    };
  }
  return adminOf.admin;
}

type Seg = string | number;

/// A path as the server writes it: `rules[0].period`, `tiers.free.limits[1]`.
function pathText(segs: Seg[]): string {
  return segs.reduce<string>((p, s) => (typeof s === "number" ? `${p}[${s}]` : p ? `${p}.${s}` : s), "");
}

/// The path one step up: `rules[0].period` to `rules[0]` to `rules` to the root ("").
function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
  return cut > 0 ? path.slice(0, cut) : "";
}

function clone<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

/// What a field's text stands for: a number where one was (a mistyped number stays text,
/// so that the server says what is wrong with it), JSON where nothing was, else the text.
function parseLeaf(text: string, was: unknown): unknown {
  const t = text.trim();
  if (typeof was === "number") return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t) ? Number(t) : text;
  if (was === null) {
    if (!t) return null;
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}

/// The editor: the policy as a form, one field per value, with sections for its maps and
/// lists that can gain and lose entries. Saved with `PUT /v1/config`; a refused policy
/// changes nothing, and each of its errors is shown beside the field at its path, listed
/// at the top with a link to that field.
function policyEditor(main: HTMLElement, initial: any, saved: (now: any) => void): HTMLElement {
  let doc: any = clone(initial);
  let serial = 0;
  /// Where each path is drawn: the element taking focus and the one errors go in.
  let spots = new Map<string, { focus: HTMLElement; slot: HTMLElement; input?: HTMLElement }>();
  const tree = el("div", { id: "policy-tree" });
  const summary = el("div", { id: "policy-errors", tabindex: "-1" });
  const done = el("p", { id: "policy-saved", role: "status" });

  const at = (segs: Seg[]): any => segs.reduce((v, s) => v?.[s as any], doc);
  const put = (segs: Seg[], value: unknown) => {
    if (!segs.length) doc = value;
    else at(segs.slice(0, -1))[segs[segs.length - 1] as any] = value;
  };
  const remove = (segs: Seg[]) => {
    const parent = at(segs.slice(0, -1));
    const last = segs[segs.length - 1];
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last as string];
  };

  const redraw = (focusPath?: string) => {
    spots = new Map();
    summary.replaceChildren();
    tree.replaceChildren(node(doc, [], "Policy"));
    const spot = focusPath !== undefined ? spots.get(focusPath) : undefined;
    spot?.focus.focus();
  };

  const node = (value: any, segs: Seg[], label: string, removable = false): HTMLElement => {
    const path = pathText(segs);
    const id = `pf-${serial++}`;
    const removeButton = () =>
      button("Remove", () => {
        remove(segs);
        redraw(parentPath(path));
      }, "secondary small", `Remove ${path}`);
    if (value !== null && typeof value === "object") {
      const legend = el("legend", { id, tabindex: "-1" }, label);
      if (removable) legend.append(" ", removeButton());
      const box = el("fieldset", { class: "node", "data-path": path }, legend);
      spots.set(path, { focus: legend, slot: box });
      if (Array.isArray(value)) {
        value.forEach((item, i) => box.append(node(item, [...segs, i], `${label} ${i + 1}`, true)));
        box.append(
          button("Add an item", () => {
            // A new entry starts as a copy of the last, the likeliest shape for it.
            value.push(value.length ? clone(value[value.length - 1]) : "");
            redraw(pathText([...segs, value.length - 1]));
          }, "secondary small", `Add an item to ${path || "the policy"}`),
        );
      } else {
        for (const [k, v] of Object.entries(value)) box.append(node(v, [...segs, k], k, true));
        box.append(addField(value, segs));
      }
      return box;
    }
    let input: HTMLInputElement | HTMLSelectElement;
    if (typeof value === "boolean") {
      input = select(id, [["true", "true"], ["false", "false"]], String(value));
      input.addEventListener("change", () => put(segs, input.value === "true"));
    } else {
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
    if (removable) field.append(removeButton());
    spots.set(path, { focus: input, slot: field, input });
    return field;
  };

  /// "Add a field": a name and a value (JSON, or else text) for a map.
  const addField = (obj: Record<string, unknown>, segs: Seg[]): HTMLElement => {
    const path = pathText(segs);
    const holder = el("div", { class: "add" });
    const open = button("Add a field", () => {
      const n = serial++;
      const name = el("input", { id: `add-name-${n}`, autocomplete: "off" });
      const val = el("input", { id: `add-value-${n}`, autocomplete: "off", spellcheck: "false" });
      const why = el("p", { class: "error", id: `add-why-${n}` });
      const add = () => {
        const k = name.value.trim();
        if (!k) return void (why.textContent = "A field needs a name.");
        if (k in obj) return void (why.textContent = `${k} is there already.`);
        let v: unknown = val.value;
        try {
          v = JSON.parse(val.value);
        } catch {
          // Not JSON: the text itself.
        }
        obj[k] = v;
        redraw(pathText([...segs, k]));
      };
      // Enter in either box adds, as it would submit a form (forms cannot nest).
      for (const i of [name, val]) {
        i.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter") {
            ev.preventDefault();
            add();
          }
        });
      }
      holder.replaceChildren(
        el("label", { for: name.id }, "New field ", name),
        el("label", { for: val.id }, "Value (JSON or text) ", val),
        button("Add", add, "small", `Add the field to ${path || "the policy"}`),
        button("Cancel", () => {
          holder.replaceChildren(open);
          open.focus();
        }, "secondary small"),
        why,
      );
      name.focus();
    }, "secondary small", `Add a field to ${path || "the policy"}`);
    holder.append(open);
    return holder;
  };

  /// Each error beside the nearest field drawn at or above its path, and all of them
  /// listed at the top, each a link to its field.
  const showErrors = (e: ApiError) => {
    const errors = e.errors.length ? e.errors : [{ path: "", message: e.detail || e.title }];
    const items = errors.map((x, i) => {
      let path = x.path;
      while (!spots.has(path) && path) path = parentPath(path);
      const spot = spots.get(path) ?? spots.get("")!;
      const eid = `pe-${i}`;
      const text = path === x.path ? x.message : `${x.path}: ${x.message}`;
      const message = el("p", { class: "error field-error", id: eid }, text);
      // Beside a field, under it; in a section, under its title.
      if (spot.input) spot.slot.append(message);
      else spot.slot.insertBefore(message, spot.slot.children[1] ?? null);
      const target = spot.input ?? spot.focus;
      if (spot.input) spot.input.setAttribute("aria-invalid", "true");
      target.setAttribute("aria-describedby", [target.getAttribute("aria-describedby"), eid].filter(Boolean).join(" "));
      return el("li", {}, el("a", { href: `#${target.id}` }, `${x.path || "the policy"}: ${x.message}`));
    });
    summary.replaceChildren(
      el("h3", {}, `The policy was not saved: ${errors.length} ${errors.length === 1 ? "error" : "errors"}`),
      el("ul", { class: "error" }, ...items),
    );
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
    } catch (e) {
      redraw();
      if (e instanceof ApiError) showErrors(e);
      else showError(main, e);
    }
  });
  const reset = button("Discard changes", async () => {
    try {
      doc = clone(await api("GET", "/v1/config"));
      redraw();
      done.textContent = "Changes discarded: the form shows the policy in force.";
    } catch (e) {
      showError(main, e);
    }
  }, "secondary");
  redraw();
  return el(
    "div",
    { class: "editor" },
    el(
      "p",
      { class: "hint" },
      "Every value of the policy is a field. Nothing changes until it is saved; the server checks the whole policy first and refuses it with every error, shown here at its place.",
    ),
    summary,
    tree,
    el("p", {}, save, " ", reset),
    done,
  );
}

/// "Try a request": what a check with these attributes would get now, explained by
/// `POST /v1/explain`, which consumes nothing.
function tryPanel(): HTMLElement {
  const fields = ["user", "ip", "method", "path", "tenant", "api_key"];
  const inputs = fields.map((f) => el("input", { id: `try-${f}`, autocomplete: "off" }));
  const out = el("div", { id: "explain", "aria-live": "polite" });
  const form = el(
    "form",
    { class: "inline", "aria-label": "Try a request" },
    ...fields.map((f, i) => el("label", { for: `try-${f}` }, `${f} `, inputs[i])),
    el("button", { type: "submit" }, "Explain"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const subject: Record<string, string> = {};
    fields.forEach((f, i) => {
      if (inputs[i].value) subject[f] = inputs[i].value;
    });
    try {
      const x = await api("POST", "/v1/explain", { subject });
      const d = x.decision;
      out.replaceChildren(
        el(
          "p",
          { id: "explain-summary" },
          `${d.allowed ? "Allowed" : "Denied"} (${d.code}); ${x.rules_examined} of ${x.rules_total} rules examined` +
            (x.listed ? `; on the ${x.listed.list} list (${x.listed.entry})` : "") +
            "; nothing consumed",
        ),
        table(
          ["Rule", "Counter key", "Limit", "Remaining", "Would"],
          d.limits.map((l: any) => [l.name, l.key, String(l.limit), String(l.remaining), l.exceeded ? "deny" : "allow"]),
        ),
        el("h3", {}, "Headers"),
        el("pre", {}, Object.entries(d.headers ?? {}).map(([k, v]) => `${k}: ${v}`).join("\n")),
      );
    } catch (e) {
      out.replaceChildren(el("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    }
  });
  return el("section", { "aria-label": "Try a request" }, el("h2", {}, "Try a request"), form, out);
}
