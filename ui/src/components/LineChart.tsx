// A line chart of the last values of each series, as SVG (no chart library): the newest
// value at the right edge, ten units apart, scaled to the largest.

export interface Series {
  values: number[];
  /// The class that colours the line (app.css).
  cls: string;
}

export function LineChart({ series, label }: { series: Series[]; label: string }) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  return (
    <svg viewBox="0 0 600 120" width="600" height="120" role="img" aria-label={label}>
      {series.map((s) => (
        <polyline
          key={s.cls}
          className={s.cls}
          points={s.values.map((v, i) => `${600 - (s.values.length - 1 - i) * 10},${115 - (v / max) * 110}`).join(" ")}
        />
      ))}
    </svg>
  );
}
