//! Runs every algorithm of the core on one bursty arrival pattern, with the clock moved by
//! hand, and draws what each admitted as an SVG bar chart: requests per second, admitted
//! below, denied above. Shared by the example that writes the pictures and the test that
//! finds them stale.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tollgate_core::time::{NANOS_PER_MILLI, NANOS_PER_SEC, Nanos};
use tollgate_core::{Limiter, MemoryStore, Mode, Policy, Subject};

/// Where the pictures live, from the crate's folder.
pub const FOLDER: &str = "../../docs/concepts/img";

/// How long the pattern runs, in seconds.
const SECONDS: usize = 60;

/// 30 s before an hour turns (2026-01-05T00:59:30Z), so the quota's calendar hour ends in
/// the middle of the picture; also a multiple of 10 s, so clock-aligned windows start on
/// the grid lines.
const START: Nanos = (1_767_571_200 + 3_570) * NANOS_PER_SEC;

/// Each algorithm, its rule, and what the picture's title says of it.
const RULES: [(&str, &str); 7] = [
    ("gcra", "algorithm: gcra, limit: 10, period: 10s, burst: 5"),
    (
        "token_bucket",
        "algorithm: token_bucket, limit: 10, period: 10s, burst: 5",
    ),
    (
        "fixed_window",
        "algorithm: fixed_window, limit: 10, period: 10s",
    ),
    (
        "sliding_window",
        "algorithm: sliding_window, limit: 10, period: 10s",
    ),
    (
        "sliding_log",
        "algorithm: sliding_log, limit: 10, period: 10s",
    ),
    (
        "concurrency",
        "algorithm: concurrency, limit: 5, lease_ttl: 2s",
    ),
    ("quota", "algorithm: quota, limit: 30, period: hour"),
];

/// The arrival pattern, as offsets from the start in milliseconds: a burst of 15, two a
/// second for 15 s, a quiet spell, a burst of 20, then one a second.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "offsets of a few seconds, far from overflowing"
)]
pub fn arrivals() -> Vec<u64> {
    let mut at = Vec::new();
    at.extend((0..15).map(|i| 1_000 + 20 * i));
    at.extend((0..30).map(|i| 5_000 + 500 * i));
    at.extend((0..20).map(|i| 35_000 + 20 * i));
    at.extend((0..20).map(|i| 40_000 + 1_000 * i));
    at
}

/// The memory store answers at once, so one poll completes a decision.
fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Whether each arrival was admitted under `rule`.
pub fn run(rule: &str) -> Result<Vec<bool>, String> {
    let yaml = format!("rules:\n  - {{ name: demo, {rule} }}\n");
    let policy = Policy::from_yaml(&yaml).map_err(|e| e.to_string())?;
    let limiter = Limiter::new(MemoryStore::default(), policy);
    let subject = Subject::new()
        .with("user", "demo")
        .map_err(|e| e.to_string())?;
    let policy = limiter.policy();
    arrivals()
        .into_iter()
        .map(|ms| {
            let now = START.saturating_add(ms.saturating_mul(NANOS_PER_MILLI));
            now_or_never(limiter.decide(&policy, &subject, 1, now, Mode::Consume))
                .map(|d| d.allowed)
                .ok_or_else(|| "the memory store did not answer at once".to_owned())
        })
        .collect()
}

const LEFT: f64 = 40.0;
const WIDTH: f64 = 680.0;
const TOP: f64 = 34.0;
const PLOT: f64 = 110.0;
/// Pixels per request in one second's bar.
const UNIT: f64 = 5.0;

/// The picture of one run: a bar per second, admitted (green) under denied (red).
pub fn svg(name: &str, rule: &str, admitted: &[bool]) -> String {
    let mut per_second = [(0u32, 0u32); SECONDS];
    for (ms, ok) in arrivals().into_iter().zip(admitted) {
        let Some(bin) = usize::try_from(ms / 1_000)
            .ok()
            .and_then(|s| per_second.get_mut(s))
        else {
            continue;
        };
        if *ok {
            bin.0 = bin.0.saturating_add(1);
        } else {
            bin.1 = bin.1.saturating_add(1);
        }
    }
    let slot = (WIDTH - LEFT - 24.0) / SECONDS as f64;
    let base = TOP + PLOT;
    let x = |s: usize| LEFT + slot * s as f64;
    let total = admitted.len();
    let yes = admitted.iter().filter(|a| **a).count();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 190" width="{WIDTH}" height="190" font-family="sans-serif" font-size="11" role="img" aria-label="{name}: {yes} of {total} requests admitted">"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="{WIDTH}" height="190" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{name}</text><text x="{:.1}" y="16" fill="#555555">{rule}</text>"##,
        LEFT + 8.0 * name.len() as f64 + 12.0
    );
    for s in (0..=SECONDS).step_by(10) {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{base}" stroke="#dddddd"/><text x="{0:.1}" y="{1}" text-anchor="middle" fill="#555555">{s} s</text>"##,
            x(s),
            base + 14.0
        );
    }
    for n in [5u32, 10, 15, 20] {
        let y = base - UNIT * f64::from(n);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y}" x2="{:.1}" y2="{y}" stroke="#eeeeee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555555">{n}</text>"##,
            x(SECONDS),
            LEFT - 4.0,
            y + 4.0
        );
    }
    for (s, (ok, no)) in per_second.iter().enumerate() {
        let left = x(s) + 1.0;
        let w = slot - 2.0;
        let green = UNIT * f64::from(*ok);
        let red = UNIT * f64::from(*no);
        if *ok > 0 {
            let _ = writeln!(
                out,
                r##"<rect x="{left:.1}" y="{:.1}" width="{w:.1}" height="{green:.1}" fill="#2e7d32"/>"##,
                base - green
            );
        }
        if *no > 0 {
            let _ = writeln!(
                out,
                r##"<rect x="{left:.1}" y="{:.1}" width="{w:.1}" height="{red:.1}" fill="#c62828"/>"##,
                base - green - red
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{base}" x2="{:.1}" y2="{base}" stroke="#333333"/>"##,
        x(SECONDS)
    );
    let legend = base + 34.0;
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{:.1}" width="10" height="10" fill="#2e7d32"/><text x="{:.1}" y="{legend}">admitted</text><rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#c62828"/><text x="{:.1}" y="{legend}">denied (requests per second)</text><text x="{:.1}" y="{legend}" text-anchor="end">{yes} of {total} admitted</text>"##,
        legend - 9.0,
        LEFT + 14.0,
        LEFT + 80.0,
        legend - 9.0,
        LEFT + 94.0,
        x(SECONDS)
    );
    out.push_str("</svg>\n");
    out
}

/// Every picture: its file name and its SVG.
pub fn pictures() -> Result<Vec<(String, String)>, String> {
    RULES
        .iter()
        .map(|(name, rule)| Ok((format!("{name}.svg"), svg(name, rule, &run(rule)?))))
        .collect()
}
