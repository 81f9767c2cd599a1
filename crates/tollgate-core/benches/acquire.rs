//! One check on the memory store against governor 0.10 (keyed, DashMap) doing the same
//! job in the same run (see `common`).
//!
//! Groups: `one_thread/{keys}` reports time per check; `two_threads/{keys}` reports
//! checks per second over both threads. Criterion measures one side after the other, so
//! when the machine changes pace between them the ratio moves with it; `acquire_ratio`
//! alternates the two sides and reports the ratio per round.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Ours, governor, keys, run, walk};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    for n in [10_000usize, 1_000_000] {
        let keys = keys(n);
        let walk = walk(n);
        let ours = Ours::new(n);
        let gov = governor();
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
        let ours_fn = |k: &'static str| ours.check(k);
        let gov_fn = |k: &'static str| gov.check_key(&k).is_ok();
        g.bench_function(BenchmarkId::new("tollgate", n), |b| {
            b.iter_custom(|iters| run(2, iters, &walk, &keys, &ours_fn))
        });
        g.bench_function(BenchmarkId::new("governor", n), |b| {
            b.iter_custom(|iters| run(2, iters, &walk, &keys, &gov_fn))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
