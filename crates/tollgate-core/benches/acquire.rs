//! One check on the memory store against governor 0.10 (keyed, DashMap) doing the same
//! job in the same run: the same String keys in the same order, one real clock read per
//! check on both sides (governor reads its quanta clock inside `check_key`; Tollgate reads
//! a quanta-backed `FastClock` and passes the instant in).
//!
//! Groups: `one_thread/{keys}` reports time per check; `two_threads/{keys}` reports
//! checks per second over both threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::borrow::Cow;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tollgate_core::algorithm::{Gcra, Limit};
use tollgate_core::policy::Rule;
use tollgate_core::policy::template::KeyTemplate;
use tollgate_core::time::{Clock, FastClock, NANOS_PER_SEC};
use tollgate_core::{Check, MemoryStore, MemoryStoreConfig, Store};

const RATE: u32 = 1_000_000;

fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the memory store answers at once"),
    }
}

struct Ours {
    store: MemoryStore,
    rule: Rule,
    clock: FastClock,
}

impl Ours {
    fn new(keys: usize) -> Self {
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
    fn check(&self, key: &str) -> bool {
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

fn governor() -> DefaultKeyedRateLimiter<&'static str> {
    RateLimiter::dashmap(Quota::per_second(NonZeroU32::new(RATE).unwrap()))
}

/// The keys as slices of one buffer, as a server holds them while parsing requests; both
/// sides get the same `&str`s.
fn keys(n: usize) -> Vec<&'static str> {
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

/// A fixed pseudo-random walk over the keys, the same for both sides.
fn order(n: usize, len: usize, seed: u64) -> Vec<u32> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as u32
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for n in [10_000usize, 1_000_000] {
        let keys = Arc::new(keys(n));
        let walk = Arc::new(order(n, 1 << 20, 0x9e37_79b9));
        let ours = Arc::new(Ours::new(n));
        let gov = Arc::new(governor());
        for k in keys.iter() {
            assert!(ours.check(k));
            assert!(gov.check_key(k).is_ok());
        }

        let mut g = c.benchmark_group("one_thread");
        g.throughput(Throughput::Elements(1));
        g.measurement_time(Duration::from_secs(4));
        g.bench_function(BenchmarkId::new("tollgate", n), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & (walk.len() - 1);
                ours.check(keys[walk[i] as usize])
            })
        });
        g.bench_function(BenchmarkId::new("governor", n), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & (walk.len() - 1);
                gov.check_key(&keys[walk[i] as usize]).is_ok()
            })
        });
        g.finish();

        let mut g = c.benchmark_group("two_threads");
        // One iteration is one check on each of the two threads.
        g.throughput(Throughput::Elements(2));
        g.measurement_time(Duration::from_secs(4));
        let run_two = |iters: u64, f: Arc<dyn Fn(&'static str) -> bool + Send + Sync>| {
            let start = Instant::now();
            let threads: Vec<_> = (0..2u64)
                .map(|t| {
                    let (f, keys, walk) = (f.clone(), keys.clone(), walk.clone());
                    std::thread::spawn(move || {
                        let mut i = (t as usize) * 7919;
                        let mut ok = 0u64;
                        for _ in 0..iters {
                            i = (i + 1) & (walk.len() - 1);
                            ok += u64::from(f(keys[walk[i] as usize]));
                        }
                        ok
                    })
                })
                .collect();
            let ok: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(ok, 2 * iters);
            start.elapsed()
        };
        let o = ours.clone();
        let ours_fn: Arc<dyn Fn(&'static str) -> bool + Send + Sync> =
            Arc::new(move |k| o.check(k));
        let gv = gov.clone();
        let gov_fn: Arc<dyn Fn(&'static str) -> bool + Send + Sync> =
            Arc::new(move |k| gv.check_key(&k).is_ok());
        g.bench_function(BenchmarkId::new("tollgate", n), |b| {
            b.iter_custom(|iters| run_two(iters, ours_fn.clone()))
        });
        g.bench_function(BenchmarkId::new("governor", n), |b| {
            b.iter_custom(|iters| run_two(iters, gov_fn.clone()))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
