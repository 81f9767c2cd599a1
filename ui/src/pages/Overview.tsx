// The overview: the live stream of the server's decisions and the keys denied most.
import { useEffect, useState } from "react";
import { api } from "../api";
import { LineChart } from "../components/LineChart";
import { Table } from "../components/Table";
import { events } from "../live";
import { Link } from "../router";
import { StatusRegion, useStatus } from "../status";

/// How many seconds the chart keeps.
const KEPT = 60;

interface Snapshot {
  decisions_per_second: number;
  denials_per_second: number;
  decisions_total: number;
  latency_ms: { p50: number | null; p99: number | null };
  store: { healthy: boolean; detail?: string };
  top_denied_rules: { rule: string; denied: number }[];
}

const ms = (v: number | null) => (v == null ? "-" : `≤ ${v} ms`);

export function Overview() {
  const status = useStatus();
  const [now, setNow] = useState<Snapshot | null>(null);
  const [history, setHistory] = useState<{ decided: number[]; denied: number[] }>({ decided: [], denied: [] });
  const [topKeys, setTopKeys] = useState<[string, number][] | null>(null);

  useEffect(() => {
    let live = true;
    api("GET", `/v1/violations?from=${Date.now() - 3_600_000}&limit=1000`)
      .then((v) => {
        const by = new Map<string, number>();
        for (const x of v.violations) if (x.key_id) by.set(x.key_id, (by.get(x.key_id) ?? 0) + 1);
        if (live) setTopKeys([...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5));
      })
      .catch((e) => live && status.fail(e));
    return () => {
      live = false;
    };
  }, [status.fail]);

  // The stream lasts as long as the page is shown.
  useEffect(() => {
    const leaving = new AbortController();
    events("/v1/live", leaving.signal, (data) => {
      const s: Snapshot = JSON.parse(data);
      setNow(s);
      setHistory((h) => ({
        decided: [...h.decided, s.decisions_per_second].slice(-KEPT),
        denied: [...h.denied, s.denials_per_second].slice(-KEPT),
      }));
    }).catch((e) => {
      if (!leaving.signal.aborted) status.fail(e);
    });
    return () => leaving.abort();
  }, [status.fail]);

  return (
    <>
      <h1>Overview</h1>
      <StatusRegion status={status} />
      <div id="live">
        {now ? (
          <Table
            head={["Decisions/s", "Denials/s", "Latency p50", "Latency p99", "Decisions", "Store"]}
            rows={[
              [
                <span id="live-rate">{String(now.decisions_per_second)}</span>,
                String(now.denials_per_second),
                ms(now.latency_ms.p50),
                ms(now.latency_ms.p99),
                <span id="live-total">{String(now.decisions_total)}</span>,
                now.store.healthy
                  ? `healthy${now.store.detail ? ": " + now.store.detail : ""}`
                  : `unavailable: ${now.store.detail}`,
              ],
            ]}
          />
        ) : null}
      </div>
      <h2>Decisions and denials per second</h2>
      <div>
        {now ? (
          <LineChart
            series={[
              { values: history.decided, cls: "decided" },
              { values: history.denied, cls: "denied" },
            ]}
            label={`decisions per second over the last minute, now ${now.decisions_per_second}; denials now ${now.denials_per_second}`}
          />
        ) : null}
      </div>
      <h2>Top denying rules (since start)</h2>
      <div>
        {now ? (
          now.top_denied_rules.length ? (
            <Table head={["Rule", "Denials"]} rows={now.top_denied_rules.map((r) => [r.rule, String(r.denied)])} />
          ) : (
            <p>No rule has denied a request.</p>
          )
        ) : null}
      </div>
      <h2>Top denied keys (last hour)</h2>
      <div>
        {topKeys ? (
          topKeys.length ? (
            <Table
              head={["Key", "Denials"]}
              rows={topKeys.map(([k, n]) => [<Link href={`/ui/keys/${encodeURIComponent(k)}`}>{k}</Link>, String(n)])}
            />
          ) : (
            <p>No key was denied in the last hour.</p>
          )
        ) : null}
      </div>
    </>
  );
}
