// The denials recorded for one key, oldest first, a page at a time.
import { useCallback, useEffect, useState } from "react";
import { query } from "../address";
import { api, describe } from "../api";
import { Button } from "../components/Button";
import { Table } from "../components/Table";
import { when } from "../format";
import { useShown } from "../latest";

export function KeyViolations({ id }: { id: string }) {
  const shown = useShown();
  const [rows, setRows] = useState<any[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(
    async (after: number | null) => {
      try {
        const v = await api("GET", "/v1/violations" + query({ key_id: id, after, limit: 50 }));
        if (!shown()) return;
        setRows((r) => (after != null && r ? r.concat(v.violations) : v.violations));
        setNext(v.next ?? null);
      } catch (e) {
        if (shown()) setError(describe(e));
      }
    },
    [id, shown],
  );

  useEffect(() => {
    void load(null);
  }, [load]);

  return (
    <section aria-labelledby="violations-title">
      <h2 id="violations-title">Violations</h2>
      <div id="key-violations">
        {error !== null ? (
          <p className="error">{error}</p>
        ) : rows ? (
          rows.length ? (
            <Table
              head={["At", "Rule", "Code", "Subject"]}
              rows={rows.map((x) => [when(x.at), x.rule || "-", x.code, JSON.stringify(x.subject ?? {})])}
            />
          ) : (
            <p>This key has not been denied.</p>
          )
        ) : null}
      </div>
      <p>
        {next != null && error === null ? (
          <Button className="secondary" onClick={() => void load(next)}>
            More violations
          </Button>
        ) : null}
      </p>
    </section>
  );
}
