//! A check of a key never seen before, on a memory store whose table has room for it
//! against one that is full of live counters and evicts one for every check.
//!
//! Both stores are sized for 100,000 counters and first take twice as many keys, so no
//! never-used slot is left in either: a new key reads its window to the end on both. The
//! clock moves 1 ms per check on both. On `room` a counter reads fresh 1 ms after its
//! check (10 per 10 ms), so a new key reuses the slot of an expired one; on `full` it is
//! live for a year (10 a year), so every new key evicts the cold counter that reads fresh
//! soonest. Groups: `gcra` (the GCRA table) and `fixed_window` (the cell table).
//!
//! Run: `cargo bench -p tollgate-core --bench evict`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

fn bench(c: &mut Criterion) {
    for algorithm in ["gcra", "fixed_window"] {
        let mut g = c.benchmark_group(algorithm);
        g.throughput(Throughput::Elements(1));
        g.measurement_time(Duration::from_secs(4));
        for (case, period) in [("room", "10ms"), ("full", "365d")] {
            let mut side = Side::new(algorithm, period);
            let before = side.store.evictions();
            let first_key = side.next;
            g.bench_function(BenchmarkId::new("new_key", case), |b| {
                b.iter(|| side.check())
            });
            let after = side.store.evictions();
            // Each side did what it is named for, when it ran (listing benchmarks runs none).
            let ran = side.next != first_key;
            match case {
                _ if !ran => {}
                "room" => assert_eq!(after.cold, before.cold),
                _ => assert!(after.cold > before.cold && after.expired == before.expired),
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
