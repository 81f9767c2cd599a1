// The limits in force for a key, of its tier and its own, drawn again after each change
// of its tier or overrides.
import { useEffect, useState } from "react";
import { api, describe } from "../api";
import { Table } from "../components/Table";
import { count, seconds } from "../format";
import { useLatest } from "../latest";

export function Limits({ path, changes }: { path: string; changes: number }) {
  const latest = useLatest();
  const [limits, setLimits] = useState<any[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const current = latest();
    api("GET", `${path}/limits`)
      .then((l) => {
        if (!current()) return;
        setLimits(l.limits);
        setError(null);
      })
      .catch((e) => current() && setError(describe(e)));
  }, [path, changes, latest]);
  return (
    <div id="key-limits">
      {error !== null ? (
        <p className="error">{error}</p>
      ) : limits ? (
        limits.length ? (
          <Table
            head={["Limit", "From", "Algorithm", "Allows", "Window", "Counter"]}
            rows={limits.map((x) => [
              x.name,
              x.source,
              x.algorithm,
              count(x.limit),
              x.window_ms == null ? "-" : seconds(Math.round(x.window_ms / 1000)),
              x.counter ?? "-",
            ])}
          />
        ) : (
          <p>No limit of its tier or its own applies to this key.</p>
        )
      ) : null}
    </div>
  );
}
