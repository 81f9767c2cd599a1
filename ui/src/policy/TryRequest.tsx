// "Try a request": what a check with these attributes would get now, explained by
// `POST /v1/explain`, which consumes nothing.
import { useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { api } from "../api";
import { Table } from "../components/Table";

const FIELDS = ["user", "ip", "method", "path", "tenant", "api_key"];

export function TryRequest() {
  const [values, setValues] = useState<Record<string, string>>({});
  const [out, setOut] = useState<ReactNode>(null);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    const subject: Record<string, string> = {};
    for (const f of FIELDS) if (values[f]) subject[f] = values[f];
    try {
      const x = await api("POST", "/v1/explain", { subject });
      const d = x.decision;
      setOut(
        <>
          <p id="explain-summary">
            {`${d.allowed ? "Allowed" : "Denied"} (${d.code}); ${x.rules_examined} of ${x.rules_total} rules examined` +
              (x.listed ? `; on the ${x.listed.list} list (${x.listed.entry})` : "") +
              "; nothing consumed"}
          </p>
          <Table
            head={["Rule", "Counter key", "Limit", "Remaining", "Would"]}
            rows={d.limits.map((l: any) => [l.name, l.key, String(l.limit), String(l.remaining), l.exceeded ? "deny" : "allow"])}
          />
          <h3>Headers</h3>
          <pre>
            {Object.entries(d.headers ?? {})
              .map(([k, v]) => `${k}: ${v}`)
              .join("\n")}
          </pre>
        </>,
      );
    } catch (e) {
      setOut(<p className="error">{e instanceof Error ? e.message : String(e)}</p>);
    }
  };

  return (
    <section aria-label="Try a request">
      <h2>Try a request</h2>
      <form className="inline" aria-label="Try a request" onSubmit={submit}>
        {FIELDS.map((f) => (
          <label key={f} htmlFor={`try-${f}`}>
            {`${f} `}
            <input
              id={`try-${f}`}
              autoComplete="off"
              value={values[f] ?? ""}
              onChange={(e) => setValues((v) => ({ ...v, [f]: e.target.value }))}
            />
          </label>
        ))}
        <button type="submit">Explain</button>
      </form>
      <div id="explain" aria-live="polite">
        {out}
      </div>
    </section>
  );
}
