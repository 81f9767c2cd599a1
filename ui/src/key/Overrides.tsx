// A key's own limits as JSON, saved with `PATCH /v1/keys/{id}`. The server checks them
// over the key's tier; each error it finds is listed under the field by its path.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, ApiError, describe } from "../api";
import type { Status } from "../status";

export function Overrides({
  path,
  current,
  status,
  saved,
}: {
  path: string;
  current: unknown;
  status: Status;
  saved: (key: any) => void;
}) {
  const [text, setText] = useState(() => JSON.stringify(current ?? {}, null, 2));
  const [errors, setErrors] = useState<string[]>([]);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    let overrides: unknown;
    try {
      overrides = JSON.parse(text.trim() || "{}");
    } catch (e) {
      setErrors([`Not JSON: ${e instanceof Error ? e.message : String(e)}`]);
      return;
    }
    try {
      const changed = await api("PATCH", path, { overrides });
      setErrors([]);
      setText(JSON.stringify(changed.overrides ?? {}, null, 2));
      status.show("Overrides saved");
      saved(changed);
    } catch (e) {
      setErrors(e instanceof ApiError && e.errors.length ? e.errors.map((x) => `${x.path}: ${x.message}`) : [describe(e)]);
    }
  };

  return (
    <section aria-labelledby="overrides-title">
      <h2 id="overrides-title">Overrides</h2>
      <form aria-label="Overrides" onSubmit={submit}>
        <label htmlFor="key-overrides">Overrides (JSON)</label>
        <p id="overrides-help" className="hint">
          {'Limits of the tier to change, by name, and limits of the key\'s own: {"requests": {"limit": 5000}} ' +
            "changes only the fields given; null drops one; {} clears every override."}
        </p>
        <textarea
          id="key-overrides"
          rows={6}
          cols={60}
          spellCheck={false}
          aria-describedby="overrides-help overrides-errors"
          aria-invalid={errors.length ? "true" : undefined}
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <div id="overrides-errors">
          {errors.length ? (
            <ul className="error">
              {errors.map((l, i) => (
                <li key={i}>{l}</li>
              ))}
            </ul>
          ) : null}
        </div>
        <p>
          <button type="submit">Save overrides</button>
        </p>
      </form>
    </section>
  );
}
