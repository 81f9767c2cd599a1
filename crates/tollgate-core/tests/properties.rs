//! Property tests: admissions never exceed an algorithm's definition, denied decisions
//! consume nothing, and threads racing on one key admit what one thread would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::sync::Arc;

use common::block_on;
use proptest::prelude::*;
use tollgate_core::policy::Rule;
use tollgate_core::time::{NANOS_PER_MILLI as MS, NANOS_PER_SEC as S, Nanos};
use tollgate_core::{Check, MemoryStore, MemoryStoreConfig, Policy, Store};

const T0: Nanos = 1_767_571_200 * S;

fn rule(yaml_fields: &str) -> Rule {
    let p = Policy::from_yaml(&format!("rules: [{{name: p, key: k, {yaml_fields}}}]")).unwrap();
    p.rules()[0].clone()
}

/// Runs the arrivals on a fresh store; returns the admitted (time, cost) pairs.
fn admitted(rule: &Rule, arrivals: &[(u64, u64)]) -> Vec<(Nanos, u64)> {
    let store = MemoryStore::new(MemoryStoreConfig { capacity: 10_000 });
    let mut now = T0;
    let mut out = Vec::new();
    for &(gap_ms, cost) in arrivals {
        now += gap_ms * MS;
        let check = Check {
            rule,
            key: "k".into(),
            cost,
        };
        let o = block_on(store.acquire(std::slice::from_ref(&check), now)).unwrap()[0];
        if o.allowed && cost > 0 {
            out.push((now, cost));
        }
    }
    out
}

fn arrivals() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (prop_oneof![3 => 0u64..50, 1 => 0u64..3_000], 0u64..4),
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn gcra_admits_at_most_capacity_plus_rate(limit in 1u64..20, period_ms in 100u64..5_000, burst in 0u64..5, arr in arrivals()) {
        let r = rule(&format!("algorithm: gcra, limit: {limit}, period: {period_ms}ms, burst: {burst}"));
        let got = admitted(&r, &arr);
        let t = (period_ms * MS).div_ceil(limit);
        for i in 0..got.len() {
            let mut sum = 0;
            for j in i..got.len() {
                sum += got[j].1;
                prop_assert!(sum <= limit + burst + (got[j].0 - got[i].0) / t);
            }
        }
    }

    #[test]
    fn token_bucket_admits_at_most_capacity_plus_refill(limit in 1u64..20, period_ms in 100u64..5_000, burst in 0u64..5, arr in arrivals()) {
        let r = rule(&format!("algorithm: token_bucket, limit: {limit}, period: {period_ms}ms, burst: {burst}"));
        let got = admitted(&r, &arr);
        let p = u128::from(period_ms * MS);
        for i in 0..got.len() {
            let mut sum = 0u128;
            for j in i..got.len() {
                sum += u128::from(got[j].1);
                let refill = u128::from(got[j].0 - got[i].0) * u128::from(limit);
                prop_assert!(sum * p <= u128::from(limit + burst) * p + refill);
            }
        }
    }

    #[test]
    fn sliding_log_is_exact(limit in 1u64..20, period_ms in 100u64..5_000, arr in arrivals()) {
        let r = rule(&format!("algorithm: sliding_log, limit: {limit}, period: {period_ms}ms"));
        let got = admitted(&r, &arr);
        let p = period_ms * MS;
        for &(t, _) in &got {
            let in_window: u64 = got.iter().filter(|(u, _)| *u <= t && u + p > t).map(|(_, c)| c).sum();
            prop_assert!(in_window <= limit);
        }
    }

    #[test]
    fn fixed_window_counts_each_window(limit in 1u64..20, period_ms in 100u64..5_000, arr in arrivals()) {
        let r = rule(&format!("algorithm: fixed_window, limit: {limit}, period: {period_ms}ms"));
        let got = admitted(&r, &arr);
        let p = period_ms * MS;
        let mut per_window = std::collections::HashMap::new();
        for &(t, c) in &got {
            *per_window.entry(t / p).or_insert(0) += c;
        }
        prop_assert!(per_window.values().all(|&n| n <= limit));
    }

    #[test]
    fn sliding_window_keeps_its_estimate(limit in 1u64..20, period_ms in 100u64..5_000, arr in arrivals()) {
        let r = rule(&format!("algorithm: sliding_window, limit: {limit}, period: {period_ms}ms"));
        let got = admitted(&r, &arr);
        let p = period_ms * MS;
        for &(t, _) in &got {
            let w = t / p;
            let cur: u64 = got.iter().filter(|(u, _)| *u / p == w && *u <= t).map(|(_, c)| c).sum();
            let prev: u64 = got.iter().filter(|(u, _)| *u / p + 1 == w).map(|(_, c)| c).sum();
            let e = t % p;
            prop_assert!(u128::from(prev) * u128::from(p - e) + u128::from(cur) * u128::from(p) <= u128::from(limit) * u128::from(p));
        }
    }

    #[test]
    fn concurrency_never_holds_more_than_the_limit(limit in 1u64..10, ttl_ms in 100u64..5_000, arr in arrivals()) {
        let r = rule(&format!("algorithm: concurrency, limit: {limit}, lease_ttl: {ttl_ms}ms"));
        let got = admitted(&r, &arr);
        let ttl = ttl_ms * MS;
        for &(t, _) in &got {
            let held: u64 = got.iter().filter(|(u, _)| *u <= t && u + ttl > t).map(|(_, c)| c).sum();
            prop_assert!(held <= limit);
        }
    }

    #[test]
    fn quota_uses_at_most_limit_plus_rollover(limit in 1u64..20, cap in 0u64..5, arr in prop::collection::vec((0u64..40_000_000, 0u64..4), 1..200)) {
        let r = rule(&format!("algorithm: quota, limit: {limit}, period: hour, rollover_cap: {cap}"));
        let got = admitted(&r, &arr);
        let hour = 3_600 * S;
        let mut per_hour = std::collections::HashMap::new();
        for &(t, c) in &got {
            *per_hour.entry(t / hour).or_insert(0) += c;
        }
        prop_assert!(per_hour.values().all(|&n| n <= limit + cap));
    }

    #[test]
    fn a_denied_decision_consumes_nothing_in_any_limit(ops in prop::collection::vec((0u64..300, 1u64..4), 1..100)) {
        let p = Policy::from_yaml("rules:
  - {name: a, key: k, algorithm: gcra, limit: 5, period: 1s, burst: 2}
  - {name: b, key: k, algorithm: sliding_log, limit: 7, period: 2s}
  - {name: c, key: k, algorithm: fixed_window, limit: 9, period: 1s}
  - {name: d, key: k, algorithm: concurrency, limit: 6, lease_ttl: 1s}
  - {name: e, key: k, algorithm: token_bucket, limit: 4, period: 1s}
  - {name: f, key: k, algorithm: sliding_window, limit: 8, period: 1s}
  - {name: g, key: k, algorithm: quota, limit: 20, period: hour}").unwrap();
        let store = MemoryStore::new(MemoryStoreConfig { capacity: 10_000 });
        let peek = |now| {
            let checks: Vec<_> = p.rules().iter().map(|rule| Check { rule, key: "k".into(), cost: 0 }).collect();
            block_on(store.preview(&checks, now)).unwrap()
        };
        let mut now = T0;
        for (gap, cost) in ops {
            now += gap * MS;
            let before = peek(now);
            let checks: Vec<_> = p.rules().iter().map(|rule| Check { rule, key: "k".into(), cost }).collect();
            let outcomes = block_on(store.acquire(&checks, now)).unwrap();
            if outcomes.iter().any(|o| !o.allowed) {
                prop_assert_eq!(peek(now), before);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// What `RateLimit` shows left (`r`) never exceeds the quota `RateLimit-Policy` shows
    /// (`q`), bursts and rollover included. Quota arrivals are spaced in minutes, so that
    /// hours pass and units roll over.
    #[test]
    fn remaining_never_exceeds_the_quota_shown(kind in 0usize..4, limit in 1u64..20, burst in 0u64..5, rollover in 0u64..10, arr in arrivals()) {
        let (fields, step) = match kind {
            0 => (format!("algorithm: gcra, limit: {limit}, period: 1s, burst: {burst}"), MS),
            1 => (format!("algorithm: token_bucket, limit: {limit}, period: 1s, burst: {burst}"), MS),
            2 => (format!("algorithm: quota, limit: {limit}, period: hour, rollover_cap: {rollover}"), 60 * MS),
            _ => (format!("algorithm: sliding_window, limit: {limit}, period: 1s"), MS),
        };
        let r = rule(&fields);
        let store = MemoryStore::new(MemoryStoreConfig { capacity: 10_000 });
        let mut now = T0;
        for &(gap, cost) in &arr {
            now += gap * step;
            let check = Check { rule: &r, key: "k".into(), cost };
            let o = block_on(store.acquire(std::slice::from_ref(&check), now)).unwrap()[0];
            let (q, _) = r.limit.policy(now, o.limit);
            prop_assert!(o.remaining <= q, "{fields}: r={} q={q}", o.remaining);
        }
    }
}

/// Eight threads race on one key at one instant: they must admit exactly what one thread
/// does, for every algorithm.
#[test]
fn eight_threads_admit_exactly_what_one_would() {
    let fields = [
        "algorithm: gcra, limit: 500, period: 1m, burst: 100",
        "algorithm: token_bucket, limit: 500, period: 1m, burst: 100",
        "algorithm: sliding_window, limit: 600, period: 1m",
        "algorithm: sliding_log, limit: 600, period: 1m",
        "algorithm: fixed_window, limit: 600, period: 1m",
        "algorithm: concurrency, limit: 600, lease_ttl: 1m",
        "algorithm: quota, limit: 600, period: day",
    ];
    for f in fields {
        let r = Arc::new(rule(f));
        let one = admitted(&r, &vec![(0, 1); 8 * 200]).len();
        assert_eq!(one, 600, "{f}");
        let store = Arc::new(MemoryStore::new(MemoryStoreConfig { capacity: 10_000 }));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, r) = (store.clone(), r.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    for _ in 0..200 {
                        let check = Check {
                            rule: &r,
                            key: "k".into(),
                            cost: 1,
                        };
                        if block_on(store.acquire(std::slice::from_ref(&check), T0)).unwrap()[0]
                            .allowed
                        {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, one, "{f}");
    }
}

/// Eight threads making two-limit decisions on shared keys never over-admit either limit
/// and never deadlock, whichever tables the limits live in; single checks on the shared
/// counter interleave with those decisions without over-admitting either.
#[test]
fn multi_limit_decisions_race_safely() {
    for (user_alg, global_alg) in [
        ("fixed_window", "fixed_window"),
        ("gcra", "gcra"),
        ("gcra", "fixed_window"),
        ("fixed_window", "gcra"),
    ] {
        let p = Arc::new(
            Policy::from_yaml(&format!(
                "rules:
  - {{name: per-user, key: '{{user}}', algorithm: {user_alg}, limit: 300, period: 1h}}
  - {{name: global, key: all, algorithm: {global_alg}, limit: 1000, period: 1h}}"
            ))
            .unwrap(),
        );
        let store = Arc::new(MemoryStore::new(MemoryStoreConfig { capacity: 10_000 }));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (store, p) = (store.clone(), p.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    for i in 0..400 {
                        let user = format!("u{}", (t + i) % 4);
                        let global = Check {
                            rule: &p.rules()[1],
                            key: "all".into(),
                            cost: 1,
                        };
                        let checks = match t % 4 {
                            // One thread in four checks the shared limit alone.
                            3 => vec![global],
                            _ => vec![
                                Check {
                                    rule: &p.rules()[0],
                                    key: user.into(),
                                    cost: 1,
                                },
                                global,
                            ],
                        };
                        if block_on(store.acquire(&checks, T0))
                            .unwrap()
                            .iter()
                            .all(|o| o.allowed)
                        {
                            n += 1;
                        }
                    }
                    (t % 4 == 3, n)
                })
            })
            .collect();
        let counts: Vec<(bool, usize)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let total: usize = counts.iter().map(|&(_, n)| n).sum();
        let paired: usize = counts.iter().filter(|c| !c.0).map(|&(_, n)| n).sum();
        // Every admission takes one of the shared 1000; paired ones also one of 4 × 300.
        assert_eq!(total, 1000, "{user_alg} + {global_alg}");
        assert!(paired <= 1200, "{user_alg} + {global_alg}: {paired}");
    }
}
