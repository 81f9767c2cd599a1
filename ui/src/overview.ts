// The overview: the live stream of the server's decisions and the keys denied most.

/// Reads the server-sent events of `path` with fetch, so the Bearer token (or the
/// session's CSRF token) can go with them (EventSource cannot send it), calling `on` with
/// each event's data.
async function events(path: string, signal: AbortSignal, on: (data: string) => void) {
  const res = await fetch(path, {
    headers: { ...authHeaders(), accept: "text/event-stream" },
    credentials: credentials(),
    signal,
  });
  if (!res.ok || !res.body) throw new ApiError(res.status, res.statusText, "");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) on(data);
    }
  }
}

/// A line chart of the last values of each series, as SVG.
function lineChart(series: { values: number[]; cls: string }[], label: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 600 120");
  svg.setAttribute("width", "600");
  svg.setAttribute("height", "120");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  for (const s of series) {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute(
      "points",
      s.values.map((v, i) => `${600 - (s.values.length - 1 - i) * 10},${115 - (v / max) * 110}`).join(" "),
    );
    line.setAttribute("class", s.cls);
    svg.append(line);
  }
  return svg;
}

async function overviewPage(main: HTMLElement) {
  const status = el("p", { id: "status", role: "status" });
  const now = el("div", { id: "live" });
  const chart = el("div", {});
  const rules = el("div", {});
  const keys = el("div", {});
  main.append(
    el("h1", {}, "Overview"),
    status,
    now,
    el("h2", {}, "Decisions and denials per second"),
    chart,
    el("h2", {}, "Top denying rules (since start)"),
    rules,
    el("h2", {}, "Top denied keys (last hour)"),
    keys,
  );
  const decided: number[] = [];
  const denied: number[] = [];
  const ms = (v: number | null) => (v == null ? "-" : `≤ ${v} ms`);
  api("GET", `/v1/violations?from=${Date.now() - 3_600_000}&limit=1000`)
    .then((v) => {
      const by = new Map<string, number>();
      for (const x of v.violations) if (x.key_id) by.set(x.key_id, (by.get(x.key_id) ?? 0) + 1);
      const top = [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
      keys.replaceChildren(
        top.length
          ? table(["Key", "Denials"], top.map(([k, n]) => [el("a", { href: `/ui/keys/${encodeURIComponent(k)}` }, k), String(n)]))
          : el("p", {}, "No key was denied in the last hour."),
      );
    })
    .catch((e) => showError(main, e));
  const signal = leaving.signal;
  try {
    await events("/v1/live", signal, (data) => {
      const s = JSON.parse(data);
      decided.push(s.decisions_per_second);
      denied.push(s.denials_per_second);
      if (decided.length > 60) decided.shift(), denied.shift();
      now.replaceChildren(
        table(
          ["Decisions/s", "Denials/s", "Latency p50", "Latency p99", "Decisions", "Store"],
          [[
            el("span", { id: "live-rate" }, String(s.decisions_per_second)),
            String(s.denials_per_second),
            ms(s.latency_ms.p50),
            ms(s.latency_ms.p99),
            el("span", { id: "live-total" }, String(s.decisions_total)),
            s.store.healthy ? `healthy${s.store.detail ? ": " + s.store.detail : ""}` : `unavailable: ${s.store.detail}`,
          ]],
        ),
      );
      chart.replaceChildren(
        lineChart(
          [
            { values: decided, cls: "decided" },
            { values: denied, cls: "denied" },
          ],
          `decisions per second over the last minute, now ${s.decisions_per_second}; denials now ${s.denials_per_second}`,
        ),
      );
      rules.replaceChildren(
        s.top_denied_rules.length
          ? table(["Rule", "Denials"], s.top_denied_rules.map((r: any) => [r.rule, String(r.denied)]))
          : el("p", {}, "No rule has denied a request."),
      );
    });
  } catch (e) {
    if (!signal.aborted) showError(main, e);
  }
}
