//! A check of a key never seen before, on a memory store whose table has room for it
//! against one that is full of live counters and evicts one for every check.
//!
//! Both stores are sized for 100,000 counters and first take twice as many keys. The
//! clock moves 1 ms per check on both. On `room` a counter reads fresh 1 ms after its
//! check (10 per 10 ms), so a new key reuses the slot of an expired one; on `full` it is
//! live for a year (10 a year), so every new key evicts the cold counter that reads fresh
//! soonest. Tables: `gcra` (the GCRA table) and `fixed_window` (the cell table). The two
//! sides take turns, round after round, and the ratio is read per round.
//!
//! Run: `cargo bench -p tollgate-core --bench evict` (`ROUNDS=15` by default; `EACH=1`
//! prints every round).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tollgate_core::time::{NANOS_PER_MILLI as MS, NANOS_PER_SEC, Nanos};
use tollgate_core::{Check, MemoryStore, MemoryStoreConfig, Policy, Store};

const CAPACITY: usize = 100_000;
const T0: Nanos = 1_767_571_200 * NANOS_PER_SEC;

fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the memory store answers at once"),
    }
}

/// A store, its rule, and the next new key and instant.
struct Side {
    store: MemoryStore,
    policy: Policy,
    next: u64,
    now: Nanos,
}

impl Side {
    fn new(algorithm: &str, period: &str) -> Side {
        let policy = Policy::from_yaml(&format!(
            "rules: [{{name: r, key: k, algorithm: {algorithm}, limit: 10, period: {period}}}]"
        ))
        .unwrap();
        let mut side = Side {
            store: MemoryStore::new(MemoryStoreConfig { capacity: CAPACITY }),
            policy,
            next: 0,
            now: T0,
        };
        for _ in 0..2 * CAPACITY {
            assert!(side.check());
        }
        side
    }

    /// One check of a new key, 1 ms after the last.
    #[inline]
    fn check(&mut self) -> bool {
        let mut buf = itoa::Buffer::new();
        let key = buf.format(self.next);
        self.next += 1;
        self.now += MS;
        let check = Check {
            rule: &self.policy.rules()[0],
            key: key.into(),
            cost: 1,
        };
        ready(self.store.acquire(std::slice::from_ref(&check), self.now))
            .is_ok_and(|o| std::hint::black_box(o[0]).allowed)
    }
}

/// Nanoseconds per check over `n` checks of new keys on `side`.
fn batch(side: &mut Side, n: u64) -> f64 {
    let start = std::time::Instant::now();
    for _ in 0..n {
        side.check();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // Test runners start bench targets too (`--list`, or `cargo test`): only `cargo bench`
    // (which passes `--bench`) measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    // Batches long enough to outlast the clock's and the scheduler's noise, short enough
    // for many rounds.
    const CHECKS: u64 = 50_000;
    println!(
        "{rounds} paired rounds of {CHECKS} new keys; ratio = full's ns per check / room's (target: at most 1.5)"
    );
    println!(
        "{:<14} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "table", "room ns", "full ns", "median", "min", "max"
    );
    for algorithm in ["gcra", "fixed_window"] {
        let mut room = Side::new(algorithm, "10ms");
        let mut full = Side::new(algorithm, "365d");
        let (room_before, full_before) = (room.store.evictions(), full.store.evictions());
        let (mut t_room, mut t_full, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Taking turns at going first, so a slow spell falls on both alike.
            let (r, f) = if round % 2 == 0 {
                let r = batch(&mut room, CHECKS);
                (r, batch(&mut full, CHECKS))
            } else {
                let f = batch(&mut full, CHECKS);
                (batch(&mut room, CHECKS), f)
            };
            t_room.push(r);
            t_full.push(f);
            ratios.push(f / r);
            if std::env::var_os("EACH").is_some() {
                println!("  round {round}: room {r:.0} ns, full {f:.0} ns");
            }
        }
        // Each side did what it is named for.
        let (room_after, full_after) = (room.store.evictions(), full.store.evictions());
        assert_eq!(room_after.cold, room_before.cold, "room evicted");
        assert!(full_after.cold > full_before.cold && full_after.expired == full_before.expired);
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "{algorithm:<14} {:>9.0} {:>9.0} {:>7.2}x {:>7.2}x {:>7.2}x",
            median(&mut t_room),
            median(&mut t_full),
            median(&mut ratios),
            lo,
            hi
        );
    }
}
