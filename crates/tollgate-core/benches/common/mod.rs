//! What both acquire benchmarks share: Tollgate's side, governor's side, the keys and the
//! order they are checked in. Both sides get the same `&str` keys in the same order and
//! read a real clock once per check (governor its quanta clock inside `check_key`;
//! Tollgate a quanta-backed `FastClock`, passing the instant in).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code
)]

use std::borrow::Cow;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tollgate_core::algorithm::{Gcra, Limit};
use tollgate_core::policy::Rule;
use tollgate_core::policy::template::KeyTemplate;
use tollgate_core::time::{Clock, FastClock, NANOS_PER_SEC};
use tollgate_core::{Check, MemoryStore, MemoryStoreConfig, Store};

/// Checks per second each key may make: high enough that every check is admitted.
pub const RATE: u32 = 1_000_000;

fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the memory store answers at once"),
    }
}

/// Tollgate's memory store with one GCRA rule, sized for `keys` counters.
pub struct Ours {
    store: MemoryStore,
    rule: Rule,
    clock: FastClock,
}

impl Ours {
    pub fn new(keys: usize) -> Self {
        let limit = Limit::Gcra(Gcra::new(u64::from(RATE), NANOS_PER_SEC, 0));
        Ours {
            store: MemoryStore::new(MemoryStoreConfig {
                capacity: keys + keys / 4,
            }),
            rule: Rule::new("bench", limit, KeyTemplate::parse("{user}").unwrap()),
            clock: FastClock::new(),
        }
    }

    #[inline]
    pub fn check(&self, key: &str) -> bool {
        let check = Check {
            rule: &self.rule,
            key: Cow::Borrowed(key),
            cost: 1,
        };
        let now = self.clock.now();
        // The whole outcome is kept, as a server writes every field into its headers;
        // with only `allowed` read, the compiler would skip computing the rest.
        ready(self.store.acquire(std::slice::from_ref(&check), now))
            .is_ok_and(|o| std::hint::black_box(o[0]).allowed)
    }
}

/// governor 0.10, keyed, on its default DashMap store and clock.
pub fn governor() -> DefaultKeyedRateLimiter<&'static str> {
    RateLimiter::dashmap(Quota::per_second(NonZeroU32::new(RATE).unwrap()))
}

/// The keys as slices of one buffer, as a server holds them while parsing requests; both
/// sides get the same `&str`s.
pub fn keys(n: usize) -> Vec<&'static str> {
    let mut buf = String::new();
    let mut ends = Vec::with_capacity(n);
    for i in 0..n {
        buf.push_str(&format!("user:{i}"));
        ends.push(buf.len());
    }
    let buf: &'static str = Box::leak(buf.into_boxed_str());
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let k = &buf[start..end];
            start = end;
            k
        })
        .collect()
}

/// The walk both benches use: a fixed pseudo-random order of `n` keys, 2^20 steps long,
/// the same for both sides.
pub fn walk(n: usize) -> Vec<u32> {
    let mut x: u64 = 0x9e37_79b9;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as u32
        })
        .collect()
}

/// Where thread `t` starts on the walk, so that two threads check different keys at once.
pub fn walk_start(t: usize) -> usize {
    t * 7919
}

/// Runs `checks` checks of `f` on each of `threads` threads, each walking the keys from its
/// own start; answers the wall time. Every check must be admitted.
pub fn run(
    threads: usize,
    checks: u64,
    walk: &[u32],
    keys: &[&'static str],
    f: &(dyn Fn(&'static str) -> bool + Sync),
) -> Duration {
    let mask = walk.len() - 1;
    let began = Instant::now();
    let admitted: u64 = std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut i = walk_start(t);
                    let mut ok = 0u64;
                    for _ in 0..checks {
                        i = (i + 1) & mask;
                        ok += u64::from(f(keys[walk[i] as usize]));
                    }
                    ok
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(admitted, threads as u64 * checks, "every check is admitted");
    began.elapsed()
}
