// "Add a field" of a map of the policy: a name and a value (JSON, or else text). Enter in
// either box adds, as it would submit a form (forms cannot nest).
import { useEffect, useId, useRef, useState } from "react";
import type { KeyboardEvent } from "react";
import { Button } from "../components/Button";

export function AddField({ map, path, added }: { map: Record<string, unknown>; path: string; added: (name: string) => void }) {
  const n = useId();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [why, setWhy] = useState("");
  const opener = useRef<HTMLButtonElement>(null);
  /// Set on Cancel: the focus goes back to the button that opened the boxes.
  const cancelled = useRef(false);

  useEffect(() => {
    if (!open && cancelled.current) {
      cancelled.current = false;
      opener.current?.focus();
    }
  }, [open]);

  const add = () => {
    const k = name.trim();
    if (!k) return setWhy("A field needs a name.");
    if (k in map) return setWhy(`${k} is there already.`);
    let v: unknown = value;
    try {
      v = JSON.parse(value);
    } catch {
      // Not JSON: the text itself.
    }
    map[k] = v;
    added(k);
  };
  const enter = (ev: KeyboardEvent) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      add();
    }
  };

  const target = path || "the policy";
  if (!open) {
    return (
      <div className="add">
        <Button
          className="secondary small"
          label={`Add a field to ${target}`}
          ref={opener}
          onClick={() => {
            setName("");
            setValue("");
            setWhy("");
            setOpen(true);
          }}
        >
          Add a field
        </Button>
      </div>
    );
  }
  return (
    <div className="add">
      <label htmlFor={`add-name-${n}`}>
        New field{" "}
        <input id={`add-name-${n}`} autoComplete="off" autoFocus value={name} onChange={(e) => setName(e.target.value)} onKeyDown={enter} />
      </label>
      <label htmlFor={`add-value-${n}`}>
        Value (JSON or text){" "}
        <input
          id={`add-value-${n}`}
          autoComplete="off"
          spellCheck={false}
          value={value}
          onChange={(e) => setValue(e.target.value)}
          onKeyDown={enter}
        />
      </label>
      <Button className="small" label={`Add the field to ${target}`} onClick={add}>
        Add
      </Button>
      <Button
        className="secondary small"
        onClick={() => {
          cancelled.current = true;
          setOpen(false);
        }}
      >
        Cancel
      </Button>
      <p className="error" id={`add-why-${n}`}>
        {why}
      </p>
    </div>
  );
}
