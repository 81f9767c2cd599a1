//! One check on the memory store against governor 0.10 (keyed, DashMap) doing the same
//! job in the same run (see `common`).
//!
//! Groups: `one_thread/{keys}` reports time per check; `two_threads/{keys}` reports
//! checks per second over both threads. Criterion measures one side after the other, so
//! when the machine changes pace between them the ratio moves with it; `acquire_ratio`
//! alternates the two sides and reports the ratio per round.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Ours, governor, keys, order, walk_start};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

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
                        let mut i = walk_start(t as usize);
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
