#!/usr/bin/env python3
"""Draw Tollgate's Grafana dashboards from a real Prometheus, one PNG per dashboard.

Grafana itself is not needed: each panel's queries go to Prometheus's HTTP API
(`/api/v1/query_range` for time series and stats, `/api/v1/query` for instant panels)
with Grafana's variables filled in as Grafana would, and the answers are drawn with
matplotlib where the panel's `gridPos` puts them, in a dark style like Grafana's. What it
draws: time series (lines or bars, stacked or not, with their legend), stats (the
reduced value as a big number over its sparkline), gauges, bar gauges, tables, text and
rows. It is a documentation tool: anything else is drawn as a named, empty panel.

Run it with a Python that has matplotlib (the test virtualenv, after
`target/test-venv/bin/pip install matplotlib`):

    target/test-venv/bin/python deploy/grafana/render.py \\
        --prometheus http://127.0.0.1:9090 --start 1765100000 --end 1765100600 \\
        --scrape-interval 2 --out docs/observability

`deploy/grafana/render-run.py` starts the servers, loads them and calls this.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle, Wedge  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from PIL import Image  # noqa: E402  (a dependency of matplotlib)

HERE = Path(__file__).resolve().parent

# Grafana's dark theme, near enough.
BG = "#111217"
PANEL = "#181b1f"
BORDER = "#2a2d33"
TEXT = "#ccccdc"
MUTED = "#8e8ea0"
GRID = "#2c3036"
ERROR = "#f2495c"
NAMED = {
    "green": "#73bf69",
    "red": "#f2495c",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "blue": "#5794f2",
    "purple": "#b877d9",
    "text": TEXT,
    "transparent": PANEL,
}
# Grafana's "classic" palette, in its order.
CLASSIC = [
    "#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9",
    "#705da0", "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c",
    "#6d1f62", "#584477", "#b7dbab", "#f4d598", "#70dbed", "#f9ba8f",
]

WIDTH = 1600  # px: the picture's width
DPI = 100
PAD = 10  # px around the grid and between panels
CELL_H = 36  # px per gridPos height unit
HEADER = 70  # px above the grid: the dashboard's title and variables
TITLE_H = 26  # px at the top of each panel for its title


def pt(px: float) -> float:
    """Points for a size in pixels (matplotlib sizes text in points)."""
    return px * 72 / DPI


# ---------------------------------------------------------------------------- units


def _scaled(v: float, steps: list[tuple[float, str]], decimals: int | None) -> str:
    for factor, suffix in steps:
        if abs(v) >= factor:
            return _num(v / factor, decimals) + suffix
    return _num(v, decimals)


def _num(v: float, decimals: int | None) -> str:
    if decimals is None:
        a = abs(v)
        if a == 0 or a >= 100:
            decimals = 0
        elif a >= 10:
            decimals = 1
        elif a >= 1:
            decimals = 2
        else:
            decimals = min(6, 2 - math.floor(math.log10(a)))
    text = f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


SHORT = [(1e12, " T"), (1e9, " B"), (1e6, " M"), (1e3, " K")]


def fmt(v: float, unit: str | None, decimals: int | None = None) -> str:
    """A value as Grafana shows it in `unit`."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    unit = unit or "short"
    if unit == "percentunit":
        return _num(v * 100, decimals) + "%"
    if unit == "percent":
        return _num(v, decimals) + "%"
    if unit in ("s", "ms", "µs", "us", "ns"):
        seconds = v * {"s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}[unit]
        a = abs(seconds)
        if a == 0:
            return "0 s"
        for limit, factor, name in (
            (1e-6, 1e-9, "ns"), (1e-3, 1e-6, "µs"), (1, 1e-3, "ms"), (60, 1, "s"),
            (3600, 60, "min"), (math.inf, 3600, "h"),
        ):
            if a < limit:
                return _num(seconds / factor, decimals) + " " + name
    if unit == "bytes":
        return _scaled(v, [(2**40, " TiB"), (2**30, " GiB"), (2**20, " MiB"), (2**10, " KiB")],
                       decimals) + ("" if abs(v) >= 1024 else " B")
    suffix = {"ops": " ops/s", "reqps": " req/s", "rps": " req/s", "cps": " c/s"}.get(unit)
    if suffix:
        return _scaled(v, SHORT, decimals).rstrip() + suffix
    if unit == "none":
        return _num(v, decimals)
    return _scaled(v, SHORT, decimals)


# ---------------------------------------------------------------------------- queries


@dataclass
class Series:
    """One series of an answer: its labels and its points (NaN where none)."""

    labels: dict
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    name: str = ""


class Prometheus:
    """Prometheus's HTTP API over one time range, with Grafana's variables."""

    def __init__(self, url: str, start: float, end: float, scrape: float, variables: dict):
        self.url = url.rstrip("/")
        self.start, self.end = start, end
        span = end - start
        # Grafana: the interval is the range over the panel's points, no finer than the
        # data source's scrape interval; $__rate_interval covers at least four scrapes.
        self.step = max(scrape, math.ceil(span / 800))
        self.rate_interval = max(self.step + scrape, 4 * scrape)
        self.variables = variables

    def expand(self, expr: str) -> str:
        """The expression with Grafana's built-in and template variables filled in."""
        span = int(round(self.end - self.start))
        builtins = {
            "__rate_interval": f"{int(self.rate_interval)}s",
            "__interval": f"{int(self.step)}s",
            "__interval_ms": str(int(self.step * 1000)),
            "__range": f"{span}s",
            "__range_s": str(span),
            "__range_ms": str(span * 1000),
        }
        values = {**self.variables, **builtins}

        def sub(m: re.Match) -> str:
            name = m.group(1) or m.group(2) or m.group(3)
            return values.get(name, ".*")

        return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", sub, expr)

    def _get(self, path: str, params: dict) -> list:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise RuntimeError(body.get("error", "query failed"))
        return body["data"]["result"]

    def range(self, expr: str) -> list[Series]:
        """A range query over the whole range, on a grid of `step` (gaps as NaN)."""
        result = self._get("/api/v1/query_range", {
            "query": self.expand(expr), "start": self.start, "end": self.end, "step": self.step,
        })
        grid = [self.start + i * self.step for i in range(int((self.end - self.start) / self.step) + 1)]
        out = []
        for s in result:
            points = {round(float(t), 3): float(v) for t, v in s["values"]}
            out.append(Series(s["metric"], grid, [points.get(round(t, 3), math.nan) for t in grid]))
        return out

    def instant(self, expr: str) -> list[Series]:
        """An instant query at the range's end."""
        result = self._get("/api/v1/query", {"query": self.expand(expr), "time": self.end})
        return [Series(s["metric"], [float(s["value"][0])], [float(s["value"][1])]) for s in result]


def legend(fmt_: str | None, labels: dict, expr: str) -> str:
    """A series' name from the target's legendFormat."""
    if fmt_ and fmt_ != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt_).strip()
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", expr)
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items()))
    return labels.get("__name__", "") + "{" + inner + "}"


def reduce(values: list[float], calc: str) -> float:
    """Grafana's reducers over one series (NaN points skipped)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return {
        "lastNotNull": finite[-1], "last": finite[-1], "first": finite[0],
        "firstNotNull": finite[0], "mean": sum(finite) / len(finite), "max": max(finite),
        "min": min(finite), "sum": sum(finite), "count": float(len(finite)),
    }.get(calc, finite[-1])


def threshold_color(defaults: dict, value: float) -> str:
    """The color of the last threshold step at or below the value."""
    steps = (defaults.get("thresholds") or {}).get("steps") or [{"color": "green", "value": None}]
    color = steps[0].get("color", "green")
    for step in steps:
        if step.get("value") is None or (not math.isnan(value) and value >= step["value"]):
            color = step.get("color", color)
    return NAMED.get(color, color)


# ---------------------------------------------------------------------------- drawing


class Canvas:
    """The figure, addressed in pixels from the top left."""

    def __init__(self, height: int):
        self.w, self.h = WIDTH, height
        self.fig = plt.figure(figsize=(WIDTH / DPI, height / DPI), dpi=DPI, facecolor=BG)

    def fx(self, x: float) -> float:
        return x / self.w

    def fy(self, y: float) -> float:
        return 1 - y / self.h

    def text(self, x, y, s, size=12, color=TEXT, **kw):
        kw.setdefault("va", "top")
        return self.fig.text(self.fx(x), self.fy(y), s, fontsize=pt(size), color=color, **kw)

    def rect(self, x, y, w, h, color, **kw):
        self.fig.add_artist(Rectangle((self.fx(x), self.fy(y + h)), w / self.w, h / self.h,
                                      facecolor=color, transform=self.fig.transFigure, zorder=-5, **kw))

    def panel_box(self, x, y, w, h):
        self.fig.add_artist(FancyBboxPatch(
            (self.fx(x), self.fy(y + h)), w / self.w, h / self.h,
            boxstyle=f"round,pad=0,rounding_size={3 / self.w}", facecolor=PANEL,
            edgecolor=BORDER, linewidth=1, transform=self.fig.transFigure, zorder=-10))

    def axes(self, x, y, w, h):
        ax = self.fig.add_axes((self.fx(x), self.fy(y + h), w / self.w, h / self.h))
        ax.set_facecolor(PANEL)
        return ax

    def line(self, x0, y0, x1, y1, color, width=2):
        self.fig.add_artist(Line2D([self.fx(x0), self.fx(x1)], [self.fy(y0), self.fy(y1)],
                                   color=color, linewidth=width, transform=self.fig.transFigure))


def text_width(s: str, size: float) -> float:
    """A rough width in pixels of text at `size` px (DejaVu Sans averages 0.6 em)."""
    return len(s) * size * 0.6


def panel_message(c: Canvas, x, y, w, h, message: str, color=MUTED):
    c.text(x + w / 2, y + TITLE_H + (h - TITLE_H) / 2, message, size=14, color=color,
           ha="center", va="center")


def fetch(prom: Prometheus, panel: dict, instant: bool) -> list[Series]:
    """Every target's series, each named by its legend format."""
    out = []
    for t in panel.get("targets", []):
        if t.get("hide") or not t.get("expr"):
            continue
        is_instant = instant or (t.get("instant") and not t.get("range"))
        series = prom.instant(t["expr"]) if is_instant else prom.range(t["expr"])
        for s in series:
            s.name = legend(t.get("legendFormat"), s.labels, t["expr"])
        out.extend(series)
    return out


def draw_timeseries(c: Canvas, prom: Prometheus, p: dict, x, y, w, h):
    defaults = p.get("fieldConfig", {}).get("defaults", {})
    custom = defaults.get("custom", {})
    unit, decimals = defaults.get("unit"), defaults.get("decimals")
    series = fetch(prom, p, instant=False)
    series = [s for s in series if any(not math.isnan(v) for v in s.values)]
    if not series:
        panel_message(c, x, y, w, h, "No data")
        return
    leg = p.get("options", {}).get("legend", {})
    calcs = leg.get("calcs") or []
    as_table = leg.get("displayMode") == "table"
    size = 11.5
    # The legend: a row per series as a table, or entries flowing over lines.
    if leg.get("showLegend", True) is False or leg.get("displayMode") == "hidden":
        rows = []
    elif as_table:
        rows = [[s] for s in series]
    else:
        rows, line, used = [], [], 0.0
        for s in series:
            need = 22 + text_width(s.name, size) + 14
            if line and used + need > w - 16:
                rows.append(line)
                line, used = [], 0.0
            line.append(s)
            used += need
        if line:
            rows.append(line)
    line_h = 17
    max_rows = max(1, int((h - TITLE_H - 60) * 0.45 / line_h))
    shown_rows = rows[:max_rows]
    legend_h = (len(shown_rows) + (1 if as_table and calcs else 0)) * line_h + (6 if rows else 0)

    plot_top, plot_bottom = y + TITLE_H + 4, y + h - legend_h - 22
    ax = c.axes(x + 62, plot_top, w - 62 - 14, max(20, plot_bottom - plot_top))
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    bars = custom.get("drawStyle") == "bars"
    fill = custom.get("fillOpacity", 0) / 100
    base = [0.0] * len(series[0].times)
    colors = {}
    for i, s in enumerate(series):
        color = CLASSIC[i % len(CLASSIC)]
        colors[id(s)] = color
        times = [mdates.date2num(_dt(t)) for t in s.times]
        vals = s.values
        if stacked:
            # A gap in this series keeps the height of the stack below it.
            vals = [(b if b else math.nan) if math.isnan(v) else b + v
                    for b, v in zip(base, s.values)]
        lower = base if stacked else [0.0] * len(vals)
        if bars:
            # At least a few pixels wide, so that a lone bar shows.
            width = max(prom.step * 0.8, 4 * (prom.end - prom.start) / (w - 76)) / 86400
            heights = [0 if math.isnan(v) else v - lo for v, lo in zip(vals, lower)]
            ax.bar(times, heights, width=width, bottom=lower if stacked else None,
                   color=color, alpha=max(fill, 0.3), edgecolor=color, linewidth=0.5)
        else:
            ax.plot(times, vals, color=color, linewidth=max(1.2, custom.get("lineWidth", 1)))
            if fill > 0:
                ax.fill_between(times, lower, vals, color=color, alpha=fill, linewidth=0)
        if stacked:
            base = [b if math.isnan(v) else v for b, v in zip(base, vals)]

    ax.set_xlim(mdates.date2num(_dt(prom.start)), mdates.date2num(_dt(prom.end)))
    lo, hi = ax.get_ylim()
    if defaults.get("min") is not None:
        lo = defaults["min"]
    if defaults.get("max") is not None:
        hi = defaults["max"]
    finite = [v for s in series for v in s.values if not math.isnan(v)]
    if hi <= lo or max(finite) <= lo:
        hi = lo + 1
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=max(2, int((plot_bottom - plot_top) / 45)),
                                           min_n_ticks=2))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v, unit, decimals)))
    ax.set_xticks([mdates.date2num(_dt(t)) for t in time_ticks(prom.start, prom.end, w / 130)])
    short = prom.end - prom.start <= 1200
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if short else "%H:%M"))
    ax.tick_params(colors=MUTED, labelsize=pt(11), length=0, pad=4)
    ax.grid(True, color=GRID, linewidth=0.8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_axisbelow(True)

    ly = y + h - legend_h + 2
    if as_table and calcs:
        for j, calc in enumerate(calcs):
            c.text(x + w - 12 - (len(calcs) - 1 - j) * 90, ly, calc.capitalize(), size=size,
                   color=MUTED, ha="right", weight="bold")
        ly += line_h
    for row in shown_rows:
        lx = x + 12
        for s in row:
            c.line(lx, ly + 8, lx + 14, ly + 8, colors[id(s)], width=3)
            label = s.name if not as_table else _clip(s.name, size, w - 40 - 90 * len(calcs))
            c.text(lx + 20, ly + 1, label, size=size, color=TEXT)
            lx += 22 + text_width(s.name, size) + 14
            if as_table:
                for j, calc in enumerate(calcs):
                    c.text(x + w - 12 - (len(calcs) - 1 - j) * 90, ly + 1,
                           fmt(reduce(s.values, calc), unit, decimals), size=size,
                           color=TEXT, ha="right")
        ly += line_h
    if len(rows) > len(shown_rows):
        c.text(x + w - 12, y + 6, f"+{len(rows) - len(shown_rows)} more in the legend",
               size=10, color=MUTED, ha="right")


def time_ticks(start: float, end: float, most: float) -> list[float]:
    """Times on a round interval, at most `most` of them over the range."""
    for step in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if (end - start) / step <= most:
            break
    first = math.ceil(start / step) * step
    return [first + i * step for i in range(int((end - first) // step) + 1)]


def _clip(s: str, size: float, width: float) -> str:
    most = max(4, int(width / (size * 0.6)))
    return s if len(s) <= most else s[: most - 1] + "…"


def _dt(t: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)


def draw_stat(c: Canvas, prom: Prometheus, p: dict, x, y, w, h):
    defaults = p.get("fieldConfig", {}).get("defaults", {})
    opts = p.get("options", {})
    calc = (opts.get("reduceOptions", {}).get("calcs") or ["lastNotNull"])[0]
    series = fetch(prom, p, instant=False)
    if not series:
        panel_message(c, x, y, w, h, "No data")
        return
    n = len(series)
    cell_w = (w - 16) / n
    for i, s in enumerate(series):
        value = reduce(s.values, calc)
        color = threshold_color(defaults, value)
        cx = x + 8 + i * cell_w
        text = fmt(value, defaults.get("unit"), defaults.get("decimals"))
        avail_h = h - TITLE_H - 10
        size = min(avail_h * 0.55, (cell_w - 16) / (len(text) * 0.62), 56)
        if opts.get("graphMode") == "area":
            finite = [v for v in s.values if not math.isnan(v)]
            if len(finite) > 1:
                spark_h = avail_h * 0.45
                ax = c.axes(cx, y + h - spark_h - 2, cell_w, spark_h)
                ax.set_facecolor("none")
                ax.axis("off")
                ax.plot(s.times, s.values, color=color, linewidth=1, alpha=0.8)
                ax.fill_between(s.times, min(0, min(finite)), s.values, color=color, alpha=0.18,
                                linewidth=0)
                ax.set_xlim(prom.start, prom.end)
                top = max(finite)
                ax.set_ylim(min(0, min(finite)), top * 1.15 if top > 0 else 1)
        if n > 1:
            c.text(cx + cell_w / 2, y + TITLE_H, s.name, size=11, color=TEXT, ha="center")
        c.text(cx + cell_w / 2, y + TITLE_H + avail_h * 0.42, text, size=size, color=color,
               ha="center", va="center", weight="bold")


def draw_gauge(c: Canvas, prom: Prometheus, p: dict, x, y, w, h):
    defaults = p.get("fieldConfig", {}).get("defaults", {})
    calc = (p.get("options", {}).get("reduceOptions", {}).get("calcs") or ["lastNotNull"])[0]
    series = fetch(prom, p, instant=False)
    if not series:
        panel_message(c, x, y, w, h, "No data")
        return
    n = len(series)
    cell_w = (w - 16) / n
    lo = defaults.get("min", 0)
    hi = defaults.get("max", 1 if defaults.get("unit") == "percentunit" else 100)
    for i, s in enumerate(series):
        value = reduce(s.values, calc)
        color = threshold_color(defaults, value)
        size = min(cell_w, (h - TITLE_H) * 1.6) - 20
        ax = c.axes(x + 8 + i * cell_w + (cell_w - size) / 2, y + TITLE_H + 4, size,
                    min(size / 2 + 10, h - TITLE_H - 8))
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-0.15, 1.1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.add_patch(Wedge((0, 0), 1, 0, 180, width=0.22, color=GRID))
        share = 0 if math.isnan(value) else min(1, max(0, (value - lo) / (hi - lo or 1)))
        ax.add_patch(Wedge((0, 0), 1, 180 - 180 * share, 180, width=0.22, color=color))
        text = fmt(value, defaults.get("unit"), defaults.get("decimals"))
        ax.text(0, 0.15, text, ha="center", va="center", color=color, weight="bold",
                fontsize=pt(max(12, min(size / 5, 40))))
        if n > 1:
            ax.text(0, -0.12, s.name, ha="center", va="center", color=TEXT, fontsize=pt(11))


def draw_bargauge(c: Canvas, prom: Prometheus, p: dict, x, y, w, h):
    defaults = p.get("fieldConfig", {}).get("defaults", {})
    unit, decimals = defaults.get("unit"), defaults.get("decimals")
    calc = (p.get("options", {}).get("reduceOptions", {}).get("calcs") or ["lastNotNull"])[0]
    series = fetch(prom, p, instant=False)
    values = [(s.name, reduce(s.values, calc)) for s in series]
    values = [(n, v) for n, v in values if not math.isnan(v)]
    if not values:
        panel_message(c, x, y, w, h, "No data")
        return
    lo = defaults.get("min", 0)
    hi = defaults.get("max", max(v for _, v in values))
    if hi <= lo:
        hi = lo + 1
    top, avail = y + TITLE_H + 4, h - TITLE_H - 12
    slot = min(avail / len(values), 44)
    name_w = min(w * 0.35, max(text_width(n, 12) for n, _ in values) + 16)
    value_w = max(text_width(fmt(v, unit, decimals), 13) for _, v in values) + 18
    bar_x, bar_w = x + 10 + name_w, w - 20 - name_w - value_w
    for i, (name, v) in enumerate(values):
        by = top + i * slot
        color = threshold_color(defaults, v)
        bh = max(8, slot - 8)
        c.text(x + 10, by + slot / 2 - 2, _clip(name, 12, name_w - 8), size=12, color=TEXT,
               va="center")
        if p.get("options", {}).get("showUnfilled", True):
            c.rect(bar_x, by + (slot - bh) / 2 - 2, bar_w, bh, "#22252b")
        share = min(1, max(0, (v - lo) / (hi - lo)))
        if share > 0:
            ax = c.axes(bar_x, by + (slot - bh) / 2 - 2, bar_w * share, bh)
            ax.axis("off")
            # The gradient display mode: the bar brightens toward its end.
            ax.imshow([[k / 63 for k in range(64)]], aspect="auto", extent=(0, 1, 0, 1),
                      cmap=matplotlib.colors.LinearSegmentedColormap.from_list(
                          "bar", [matplotlib.colors.to_rgba(color, 0.35), color]))
        c.text(x + w - 10, by + slot / 2 - 2, fmt(v, unit, decimals), size=13, color=color,
               ha="right", va="center", weight="bold")


def draw_table(c: Canvas, prom: Prometheus, p: dict, x, y, w, h):
    defaults = p.get("fieldConfig", {}).get("defaults", {})
    series = fetch(prom, p, instant=True)
    if not series:
        panel_message(c, x, y, w, h, "No data")
        return
    columns = sorted({k for s in series for k in s.labels}) + ["Value"]
    rows = [[s.labels.get(k, "") for k in columns[:-1]]
            + [fmt(s.values[-1], defaults.get("unit"), defaults.get("decimals"))] for s in series]
    col_w = (w - 20) / len(columns)
    row_h, top = 24, y + TITLE_H + 2
    for j, name in enumerate(columns):
        c.text(x + 10 + j * col_w + 6, top + 5, name, size=12, color=TEXT, weight="bold")
    c.rect(x + 10, top + row_h - 1, w - 20, 1, BORDER)
    most = int((h - TITLE_H - row_h - 8) / row_h)
    for i, row in enumerate(rows[:most]):
        ry = top + (i + 1) * row_h
        if i % 2:
            c.rect(x + 10, ry, w - 20, row_h, "#1e2126")
        for j, cell in enumerate(row):
            c.text(x + 10 + j * col_w + 6, ry + 5, _clip(cell, 12, col_w - 12), size=12,
                   color=TEXT)


def draw_text(c: Canvas, p: dict, x, y, w, h):
    content = p.get("options", {}).get("content", "")
    size, line_h = 12.5, 19
    chars = int((w - 30) / (size * 0.56))
    ly = y + TITLE_H + 2
    for para in content.splitlines():
        bullet = para.lstrip().startswith(("- ", "* "))
        para = re.sub(r"\*\*|__|`", "", para.lstrip()[2:] if bullet else para)
        if not para.strip():
            ly += line_h / 2
            continue
        for k, line in enumerate(textwrap.wrap(para, chars - (3 if bullet else 0))):
            prefix = ("•  " if k == 0 else "   ") if bullet else ""
            c.text(x + 14, ly, prefix + line, size=size, color=TEXT)
            ly += line_h
            if ly > y + h - line_h:
                return


def draw_panel(c: Canvas, prom: Prometheus, p: dict, x, y, w, h) -> str | None:
    """One panel in its box; the error text if its queries failed."""
    c.panel_box(x, y, w, h)
    c.text(x + 10, y + 6, p.get("title", ""), size=13.5, color=TEXT, weight="bold")
    kind = p.get("type")
    try:
        if kind in ("timeseries", "graph"):
            draw_timeseries(c, prom, p, x, y, w, h)
        elif kind == "stat":
            draw_stat(c, prom, p, x, y, w, h)
        elif kind == "gauge":
            draw_gauge(c, prom, p, x, y, w, h)
        elif kind == "bargauge":
            draw_bargauge(c, prom, p, x, y, w, h)
        elif kind == "table":
            draw_table(c, prom, p, x, y, w, h)
        elif kind == "text":
            draw_text(c, p, x, y, w, h)
        else:
            panel_message(c, x, y, w, h, f"({kind} panels are not drawn here)")
    except (RuntimeError, urllib.error.URLError, OSError, ValueError) as e:
        panel_message(c, x, y, w, h, f"query failed: {e}"[:120], color=ERROR)
        return str(e)
    return None


def all_panels(dash: dict) -> list[dict]:
    """Every panel, a collapsed row's panels laid under it."""
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        if p.get("type") == "row" and p.get("collapsed"):
            out.extend(p.get("panels", []))
    return out


def variables(dash: dict) -> dict:
    """Each template variable's value: its "All" value (or `.*`), else its default."""
    out = {}
    for v in dash.get("templating", {}).get("list", []):
        current = (v.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if len(current) == 1 else "|".join(current)
        if v.get("type") == "datasource":
            out[v["name"]] = current or ""
        elif current in (None, "", "$__all") or v.get("includeAll") and current == "$__all":
            out[v["name"]] = v.get("allValue") or ".*"
        else:
            out[v["name"]] = str(current)
    return out


def render(path: Path, out: Path, url: str, start: float, end: float, scrape: float) -> list[str]:
    """Draws one dashboard into `out`; the panels whose queries failed."""
    dash = json.loads(path.read_text())
    prom = Prometheus(url, start, end, scrape, variables(dash))
    panels = all_panels(dash)
    col_w = (WIDTH - PAD) / 24
    bottom = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0)
    c = Canvas(HEADER + bottom * CELL_H + PAD)

    c.rect(0, 0, WIDTH, HEADER - 14, "#181b1f")
    c.text(PAD + 4, 12, dash.get("title", path.stem), size=20, color=TEXT, weight="bold")
    shown = "   ".join(
        f"{v.get('label') or v['name']}: {'All' if v.get('includeAll') else v.get('current', {}).get('text', '')}"
        for v in dash.get("templating", {}).get("list", []) if v.get("hide", 0) != 2)
    c.text(PAD + 4, 38, shown, size=12, color=MUTED)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(start)) + " to " + \
        time.strftime("%H:%M UTC", time.gmtime(end))
    c.text(WIDTH - PAD - 4, 22, stamp, size=12, color=MUTED, ha="right")

    failed = []
    for p in panels:
        g = p["gridPos"]
        px, py = PAD + g["x"] * col_w, HEADER + g["y"] * CELL_H
        pw, ph = g["w"] * col_w - PAD, g["h"] * CELL_H - PAD
        if p.get("type") == "row":
            c.text(px + 2, py + ph / 2 + 5, "⌄  " + p.get("title", ""), size=15, color=TEXT,
                   weight="bold", va="center")
            continue
        err = draw_panel(c, prom, p, px, py, pw, ph)
        if err:
            failed.append(f"{path.name}: {p.get('title')}: {err}")
    out.parent.mkdir(parents=True, exist_ok=True)
    c.fig.savefig(out, dpi=DPI, facecolor=BG)
    plt.close(c.fig)
    # A palette of 256 colors keeps the picture small enough to commit.
    with Image.open(out) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(out, optimize=True)
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus's URL")
    ap.add_argument("--dashboards", type=Path, default=HERE / "dashboards",
                    help="the folder of dashboard JSON files")
    ap.add_argument("--out", type=Path, required=True, help="the folder the PNGs go to")
    ap.add_argument("--start", type=float, help="unix time; default: --end less 10 minutes")
    ap.add_argument("--end", type=float, help="unix time; default: now")
    ap.add_argument("--scrape-interval", type=float, default=15,
                    help="Prometheus's scrape interval in seconds, as Grafana's data source knows it")
    args = ap.parse_args()
    end = args.end or time.time()
    start = args.start or end - 600
    failed = []
    for path in sorted(args.dashboards.glob("*.json")):
        out = args.out / (path.stem + ".png")
        failed += render(path, out, args.prometheus, start, end, args.scrape_interval)
        print(f"{out}: {out.stat().st_size // 1024} KiB")
    for f in failed:
        print(f"query failed: {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
