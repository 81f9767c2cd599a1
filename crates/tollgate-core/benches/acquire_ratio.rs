//! Tollgate's memory store against governor 0.10 in alternating rounds, reporting the
//! ratio of each round and their median.
//!
//! The same cases as `acquire` (10,000 and 1,000,000 keys; 1 and 2 threads), but each
//! round times a batch of Tollgate's checks and a batch of governor's back to back, taking
//! turns at going first. On a shared machine the cost of moving a cache line between cores
//! changes from minute to minute (threefold here); measured one side after the other, as
//! criterion does, a ratio can compare one side on a slow minute with the other on a fast
//! one. Paired rounds compare the two under the same conditions.
//!
//! Each size also prints a floor: the least any keyed GCRA check does (a clock read, one
//! hash of the key, one swap in a table of 16-byte slots), in a bare loop on one thread.
//!
//! Run: `cargo bench -p tollgate-core --bench acquire_ratio` (`ROUNDS=n` for more rounds).
//! With `COUNT=n` it only makes `n` of Tollgate's checks over 10,000 keys (`KEYS=k` for
//! another number), for counting instructions or misses under valgrind (see
//! `docs/benchmarks.md`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tollgate_core::time::{Clock, FastClock};

use common::{Ours, governor, keys, run, walk};

/// Nanoseconds per check on each thread for `threads` threads each making `checks` checks.
fn batch(
    threads: usize,
    checks: usize,
    walk: &[u32],
    keys: &[&'static str],
    f: &(dyn Fn(&'static str) -> bool + Sync),
) -> f64 {
    run(threads, checks as u64, walk, keys, f).as_nanos() as f64 / checks as f64
}

/// Nanoseconds per step of the least any keyed GCRA check does, on one thread: read the
/// clock, hash the key, and swap a TAT in a table of 16-byte slots as large as the store's.
/// What a check costs above this is the work of the limiter itself.
fn floor(checks: usize, walk: &[u32], keys: &[&'static str]) -> f64 {
    /// A digest and a TAT, laid out as the store's slots are.
    #[repr(C, align(16))]
    struct Slot([AtomicU64; 2]);
    let slots: Vec<Slot> = (0..keys.len() * 10 / 7)
        .map(|_| Slot([AtomicU64::new(0), AtomicU64::new(0)]))
        .collect();
    let hasher = foldhash::fast::FixedState::with_seed(0x5eed);
    let clock = FastClock::new();
    let mask = walk.len() - 1;
    let began = Instant::now();
    let mut i = 0;
    for _ in 0..checks {
        i = (i + 1) & mask;
        let now = clock.now();
        let hash = hasher.hash_one(keys[walk[i] as usize]);
        let slot = &slots[((u128::from(hash) * slots.len() as u128) >> 64) as usize];
        let tat = slot.0[1].load(Ordering::Acquire);
        let _ =
            slot.0[1].compare_exchange(tat, tat.max(now) + 1, Ordering::AcqRel, Ordering::Acquire);
    }
    began.elapsed().as_nanos() as f64 / checks as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Tollgate's checks alone, each through one call of [`check_once`], which callgrind
/// reports with its instruction count and calls.
fn count(ours: &Ours, checks: usize, walk: &[u32], keys: &[&'static str]) -> usize {
    let mask = walk.len() - 1;
    (0..checks)
        .filter(|&i| check_once(ours, keys[walk[i & mask] as usize]))
        .count()
}

#[inline(never)]
fn check_once(ours: &Ours, key: &'static str) -> bool {
    ours.check(key)
}

/// The number in environment variable `name`, when it holds one.
fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    // `cargo bench` passes `--bench`. Test runners also start bench targets: `--list`
    // (nextest) asks for the tests, of which this target has none, and a plain run is
    // `cargo test`'s, which should not take a minute of load.
    let count_only = env_number("COUNT");
    if count_only.is_none() && !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Some(n) = count_only {
        let size = env_number("KEYS").unwrap_or(10_000);
        let (keys, walk) = (keys(size), walk(size));
        let ours = Ours::new(size);
        assert!(keys.iter().all(|k| ours.check(k)));
        assert_eq!(count(&ours, n, &walk, &keys), n);
        return;
    }
    let rounds = env_number("ROUNDS").unwrap_or(15);
    println!(
        "{rounds} rounds per case; ratio = governor's ns per check / Tollgate's (Tollgate's speed-up; \
         the targets: 2.0 on one thread, i.e. at most half the time, and 1.5 on two)"
    );
    println!(
        "{:<22} {:>12} {:>12} {:>8} {:>8} {:>8} {:>7}",
        "case", "tollgate ns", "governor ns", "median", "min", "max", "target"
    );
    for n in [10_000usize, 1_000_000] {
        let keys = keys(n);
        let walk = walk(n);
        let ours = Ours::new(n);
        let gov = governor();
        for k in &keys {
            assert!(ours.check(k));
            assert!(gov.check_key(k).is_ok());
        }
        let ours_fn = |k: &'static str| ours.check(k);
        let gov_fn = |k: &'static str| gov.check_key(&k).is_ok();
        // About 50 ms a batch.
        let checks = if n > 100_000 { 200_000 } else { 2_000_000 };
        let mut floors: Vec<f64> = (0..5).map(|_| floor(checks, &walk, &keys)).collect();
        println!(
            "{:<22} {:>12.1}",
            format!("{n} keys, floor"),
            median(&mut floors)
        );
        for threads in [1usize, 2] {
            let (mut t_ours, mut t_gov, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let (o, g) = if round % 2 == 0 {
                    let o = batch(threads, checks, &walk, &keys, &ours_fn);
                    (o, batch(threads, checks, &walk, &keys, &gov_fn))
                } else {
                    let g = batch(threads, checks, &walk, &keys, &gov_fn);
                    (batch(threads, checks, &walk, &keys, &ours_fn), g)
                };
                t_ours.push(o);
                t_gov.push(g);
                ratios.push(g / o);
            }
            let case = format!(
                "{n} keys, {threads} thread{}",
                if threads > 1 { "s" } else { "" }
            );
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            println!(
                "{case:<22} {:>12.1} {:>12.1} {:>7.2}x {:>7.2}x {:>7.2}x {:>6.1}x",
                median(&mut t_ours),
                median(&mut t_gov),
                median(&mut ratios),
                lo,
                hi,
                if threads == 1 { 2.0 } else { 1.5 }
            );
        }
    }
}
