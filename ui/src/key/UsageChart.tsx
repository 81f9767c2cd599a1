// A key's usage per minute, hour or day as bars of allowed and denied decisions, drawn as
// SVG (no chart library), with a caption that sums the range for readers of text.
import { Fragment, useCallback, useEffect, useState } from "react";
import { api } from "../api";
import { Button } from "../components/Button";
import { useLatest } from "../latest";

/// How far back each granularity's chart reaches.
const RANGES: Record<string, number> = { minute: 3_600_000, hour: 86_400_000, day: 30 * 86_400_000 };

interface Bucket {
  requests: number;
  allowed: number;
  denied: number;
}

export function UsageChart({ keyPath }: { keyPath: string }) {
  const latest = useLatest();
  const [granularity, setGranularity] = useState("minute");
  const [drawn, setDrawn] = useState<{ g: string; buckets: Bucket[] } | null>(null);
  const [error, setError] = useState<string | null>(null);

  const draw = useCallback(
    async (g: string) => {
      const current = latest();
      const to = Date.now();
      try {
        const h = await api("GET", `${keyPath}/usage/history?granularity=${g}&from=${to - RANGES[g]}&to=${to}`);
        if (!current()) return;
        setDrawn({ g, buckets: h.buckets });
        setError(null);
      } catch (e) {
        if (current()) setError(String(e));
      }
    },
    [keyPath, latest],
  );

  useEffect(() => {
    void draw("minute");
  }, [draw]);

  const buckets = drawn?.buckets ?? [];
  const max = Math.max(1, ...buckets.map((b) => b.requests));
  const width = 600 / Math.max(buckets.length, 30);
  const sum = (f: keyof Bucket) => buckets.reduce((n, b) => n + b[f], 0);
  const g = drawn?.g;
  const caption =
    error ??
    (drawn
      ? `${sum("requests")} requests (${sum("allowed")} allowed, ${sum("denied")} denied) ${
          g === "day" ? "in the last 30 days" : g === "hour" ? "in the last day" : "in the last hour"
        }, per ${g}`
      : "");

  return (
    <section aria-label="Usage">
      <h2>Usage</h2>
      <label htmlFor="granularity">
        Granularity{" "}
        <select
          id="granularity"
          value={granularity}
          onChange={(e) => {
            setGranularity(e.target.value);
            void draw(e.target.value);
          }}
        >
          {Object.keys(RANGES).map((r) => (
            <option key={r} value={r}>{`per ${r}`}</option>
          ))}
        </select>
      </label>{" "}
      <Button className="secondary" onClick={() => void draw(granularity)}>
        Refresh
      </Button>
      <svg viewBox="0 0 600 160" width="600" height="160" role="img" aria-labelledby="usage-total">
        {buckets.map((b, i) => {
          const x = 600 - (buckets.length - i) * width;
          const w = Math.max(width - 1, 1);
          const allowed = (b.allowed / max) * 150;
          const denied = (b.denied / max) * 150;
          return (
            <Fragment key={i}>
              <rect x={x} y={160 - allowed} width={w} height={allowed} className="allowed" />
              <rect x={x} y={160 - allowed - denied} width={w} height={denied} className="denied" />
            </Fragment>
          );
        })}
      </svg>
      <p id="usage-total" aria-live="polite">
        {caption}
      </p>
    </section>
  );
}
