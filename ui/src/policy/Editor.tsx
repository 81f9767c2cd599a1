// The editor: the policy as a form, one field per value, with sections for its maps and
// lists that can gain and lose entries. Saved with `PUT /v1/config`; a refused policy
// changes nothing, and each of its errors is shown beside the field at its path, listed
// at the top with a link to that field.
//
// The policy being edited is one mutable document. Typing in a field changes it and
// nothing else, so that the field keeps its text and caret; a change of shape (an entry
// added or removed, a save, a discard) draws the whole form afresh from it.
import { useLayoutEffect, useMemo, useRef, useState } from "react";
import type { ReactNode } from "react";
import { api, ApiError } from "../api";
import type { FieldError } from "../api";
import { Button } from "../components/Button";
import { FragmentLink } from "../router";
import type { Status } from "../status";
import { AddField } from "./AddField";
import { clone, parentPath, parseLeaf, pathText } from "./paths";
import type { Seg } from "./paths";

/// A value of the policy as drawn: where it is, its label, and the id of its field (a
/// leaf's input, or a section's legend).
interface Drawn {
  segs: Seg[];
  path: string;
  label: string;
  id: string;
  removable: boolean;
  /// The value itself, in the document: a section's entries are added to it in place.
  value: any;
  children: Drawn[];
}

/// Lays the document out, numbering the fields in the order they are drawn.
function layout(doc: any): Map<string, Drawn> {
  const byPath = new Map<string, Drawn>();
  let serial = 0;
  const walk = (value: any, segs: Seg[], label: string, removable: boolean): Drawn => {
    const d: Drawn = { segs, path: pathText(segs), label, id: `pf-${serial++}`, removable, value, children: [] };
    byPath.set(d.path, d);
    if (Array.isArray(value)) d.children = value.map((item, i) => walk(item, [...segs, i], `${label} ${i + 1}`, true));
    else if (isSection(value)) d.children = Object.entries(value).map(([k, v]) => walk(v, [...segs, k], k, true));
    return d;
  };
  walk(doc, [], "Policy", false);
  return byPath;
}

function isSection(value: unknown): value is object {
  return value !== null && typeof value === "object";
}

/// An error as shown beside its field.
interface Placed {
  id: string;
  text: string;
}

/// Where the errors go: each beside the nearest field drawn at or above its path, and a
/// link to that field for the list at the top.
function place(errors: FieldError[], byPath: Map<string, Drawn>) {
  const at = new Map<string, Placed[]>();
  const links = errors.map((x, i) => {
    let path = x.path;
    while (!byPath.has(path) && path) path = parentPath(path);
    const spot = byPath.get(path) ?? byPath.get("")!;
    const placed = { id: `pe-${i}`, text: spot.path === x.path ? x.message : `${x.path}: ${x.message}` };
    at.set(spot.path, [...(at.get(spot.path) ?? []), placed]);
    return { target: spot.id, text: `${x.path || "the policy"}: ${x.message}` };
  });
  return { at, links };
}

/// What the form is drawn for: the count of drawings (to draw afresh), the path whose
/// field takes the focus, and the errors of a refused save.
interface Drawing {
  serial: number;
  focus?: string;
  errors?: FieldError[];
}

export function PolicyEditor({ initial, status, saved }: { initial: any; status: Status; saved: (now: any) => void }) {
  const doc = useRef<any>(clone(initial));
  const [drawing, setDrawing] = useState<Drawing>({ serial: 0 });
  const [done, setDone] = useState("");
  const summary = useRef<HTMLDivElement>(null);

  const redraw = (focus?: string, errors?: FieldError[]) => setDrawing((d) => ({ serial: d.serial + 1, focus, errors }));
  // The document is laid out again only when it is drawn afresh.
  const byPath = useMemo(() => layout(doc.current), [drawing.serial]);
  const placed = useMemo(() => place(drawing.errors ?? [], byPath), [drawing.errors, byPath]);

  useLayoutEffect(() => {
    if (drawing.errors) summary.current?.focus();
    else if (drawing.focus !== undefined) {
      const spot = byPath.get(drawing.focus);
      if (spot) document.getElementById(spot.id)?.focus();
    }
  }, [drawing, byPath]);

  const at = (segs: Seg[]): any => segs.reduce((v, s) => v?.[s as any], doc.current);
  const put = (segs: Seg[], value: unknown) => {
    if (!segs.length) doc.current = value;
    else at(segs.slice(0, -1))[segs[segs.length - 1] as any] = value;
  };
  const remove = (segs: Seg[]) => {
    const parent = at(segs.slice(0, -1));
    const last = segs[segs.length - 1];
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last as string];
  };

  const save = async () => {
    setDone("");
    try {
      const now = await api("PUT", "/v1/config", doc.current);
      doc.current = clone(now);
      redraw();
      saved(now);
      setDone("Saved: the policy is in force.");
      status.show("Policy saved");
    } catch (e) {
      if (e instanceof ApiError) redraw(undefined, e.errors.length ? e.errors : [{ path: "", message: e.detail || e.title }]);
      else {
        redraw();
        status.fail(e);
      }
    }
  };
  const discard = async () => {
    try {
      doc.current = clone(await api("GET", "/v1/config"));
      redraw();
      setDone("Changes discarded: the form shows the policy in force.");
    } catch (e) {
      status.fail(e);
    }
  };

  const node = (d: Drawn): ReactNode => {
    const messages = placed.at.get(d.path) ?? [];
    const describedBy = messages.length ? messages.map((m) => m.id).join(" ") : undefined;
    const shown = messages.map((m) => (
      <p key={m.id} className="error field-error" id={m.id}>
        {m.text}
      </p>
    ));
    const removeButton = d.removable ? (
      <Button
        className="secondary small"
        label={`Remove ${d.path}`}
        onClick={() => {
          remove(d.segs);
          redraw(parentPath(d.path));
        }}
      >
        Remove
      </Button>
    ) : null;

    if (isSection(d.value)) {
      const list = d.value as any[];
      return (
        <fieldset key={d.id} className="node" data-path={d.path}>
          <legend id={d.id} tabIndex={-1} aria-describedby={describedBy}>
            {d.label}
            {removeButton ? <> {removeButton}</> : null}
          </legend>
          {shown}
          {d.children.map(node)}
          {Array.isArray(d.value) ? (
            <Button
              className="secondary small"
              label={`Add an item to ${d.path || "the policy"}`}
              onClick={() => {
                // A new entry starts as a copy of the last, the likeliest shape for it.
                list.push(list.length ? clone(list[list.length - 1]) : "");
                redraw(pathText([...d.segs, list.length - 1]));
              }}
            >
              Add an item
            </Button>
          ) : (
            <AddField map={d.value as Record<string, unknown>} path={d.path} added={(k) => redraw(pathText([...d.segs, k]))} />
          )}
        </fieldset>
      );
    }

    const invalid = messages.length ? "true" : undefined;
    const input =
      typeof d.value === "boolean" ? (
        <select
          id={d.id}
          data-path={d.path}
          defaultValue={String(d.value)}
          aria-invalid={invalid}
          aria-describedby={describedBy}
          onChange={(e) => put(d.segs, e.target.value === "true")}
        >
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      ) : (
        <input
          id={d.id}
          data-path={d.path}
          defaultValue={d.value === null ? "" : String(d.value)}
          autoComplete="off"
          spellCheck={false}
          inputMode={typeof d.value === "number" ? "decimal" : undefined}
          placeholder={d.value === null ? "null" : undefined}
          aria-invalid={invalid}
          aria-describedby={describedBy}
          onChange={(e) => put(d.segs, parseLeaf(e.target.value, d.value))}
        />
      );
    return (
      <div key={d.id} className="field">
        <label htmlFor={d.id}>{d.label}</label>
        {input}
        {removeButton}
        {shown}
      </div>
    );
  };

  const errors = drawing.errors;
  return (
    <div className="editor">
      <p className="hint">
        Every value of the policy is a field. Nothing changes until it is saved; the server checks the whole policy first and
        refuses it with every error, shown here at its place.
      </p>
      <div id="policy-errors" tabIndex={-1} ref={summary} className={errors ? "problems" : undefined}>
        {errors ? (
          <>
            <h3>{`The policy was not saved: ${errors.length} ${errors.length === 1 ? "error" : "errors"}`}</h3>
            <ul className="error">
              {placed.links.map((l, i) => (
                <li key={i}>
                  <FragmentLink target={l.target}>{l.text}</FragmentLink>
                </li>
              ))}
            </ul>
          </>
        ) : null}
      </div>
      {/* Keyed by the drawing, so that every field starts again from the document. */}
      <div id="policy-tree" key={drawing.serial}>
        {node(byPath.get("")!)}
      </div>
      <p>
        <Button onClick={() => void save()}>Save policy</Button>{" "}
        <Button className="secondary" onClick={() => void discard()}>
          Discard changes
        </Button>
      </p>
      <p id="policy-saved" role="status">
        {done}
      </p>
    </div>
  );
}
