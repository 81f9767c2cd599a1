//! Error budgets and burn rates, and the multi-window, multi-burn-rate alerts of the SRE
//! workbook: an alert needs both a long window (the budget is really being spent) and a
//! short one (it still is) burning faster than the pair's factor.

use std::time::Duration;

/// The windows burn rates are given over.
pub const WINDOWS: [(&str, Duration); 7] = [
    ("5m", Duration::from_secs(300)),
    ("30m", Duration::from_secs(1_800)),
    ("1h", Duration::from_secs(3_600)),
    ("2h", Duration::from_secs(7_200)),
    ("6h", Duration::from_secs(21_600)),
    ("1d", Duration::from_secs(86_400)),
    ("3d", Duration::from_secs(259_200)),
];

/// Where each of [`WINDOWS`] begins when it ends at `now` (ms).
pub fn starts(now: i64) -> impl Iterator<Item = i64> {
    WINDOWS.iter().map(move |(_, d)| before(now, *d))
}

/// The instant `d` before `now` (ms).
pub fn before(now: i64, d: Duration) -> i64 {
    now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A pair of windows that alerts together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// The long window's name in [`WINDOWS`].
    pub long: &'static str,
    /// The short window's name.
    pub short: &'static str,
    /// The burn rate both must exceed.
    pub factor: f64,
    /// Whether it asks for a person now (else a ticket).
    pub page: bool,
}

/// The workbook's pairs for a 30-day budget: 2% of it in an hour, 5% in six hours (both
/// pages), 10% in a day and 10% in three days (tickets).
pub const PAIRS: [Pair; 4] = [
    Pair {
        long: "1h",
        short: "5m",
        factor: 14.4,
        page: true,
    },
    Pair {
        long: "6h",
        short: "30m",
        factor: 6.0,
        page: true,
    },
    Pair {
        long: "1d",
        short: "2h",
        factor: 3.0,
        page: false,
    },
    Pair {
        long: "3d",
        short: "6h",
        factor: 1.0,
        page: false,
    },
];

/// How fast the budget burns: the bad share over the share allowed (1 spends it exactly
/// over the window); 0 with no request.
pub fn burn_rate(good: u64, total: u64, target: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let bad = total.saturating_sub(good) as f64 / total as f64;
    let allowed = (1.0 - target).max(f64::EPSILON);
    bad / allowed
}

/// The share of the budget left after `good` of `total` (negative once overspent).
pub fn budget_left(good: u64, total: u64, target: f64) -> f64 {
    1.0 - burn_rate(good, total, target)
}

/// The pairs burning, given each window's burn rate by name.
pub fn burning(rate: impl Fn(&str) -> f64) -> Vec<Pair> {
    PAIRS
        .iter()
        .filter(|p| rate(p.long) > p.factor && rate(p.short) > p.factor)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_budgets() {
        assert_eq!(burn_rate(0, 0, 0.999), 0.0);
        assert!((burn_rate(999, 1_000, 0.999) - 1.0).abs() < 1e-9);
        assert!((burn_rate(990, 1_000, 0.999) - 10.0).abs() < 1e-9);
        assert!((budget_left(9_995, 10_000, 0.999) - 0.5).abs() < 1e-9);
        assert!(budget_left(0, 10, 0.99) < 0.0);
    }

    #[test]
    fn a_pair_needs_both_windows() {
        let fast_now_only = |w: &str| if w == "5m" { 50.0 } else { 0.5 };
        assert!(burning(fast_now_only).is_empty());
        let steady = |w: &str| match w {
            "1h" | "5m" => 20.0,
            _ => 0.5,
        };
        let pairs = burning(steady);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].long, "1h");
        assert!(pairs[0].page);
        let everything = |_: &str| 100.0;
        assert_eq!(burning(everything).len(), 4);
    }
}
