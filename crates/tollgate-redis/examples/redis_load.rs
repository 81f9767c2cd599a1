//! Decisions per second through the Redis store: one caller at a time (one round trip per
//! decision), then 64 concurrent callers sharing the store's pipelined connection.
//!
//! `cargo run --release -p tollgate-redis --example redis_load -- redis://127.0.0.1:6379 [seconds]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_core::{Check, Policy, Store};
use tollgate_redis::{RedisConfig, RedisStore, Topology};

fn policy() -> Policy {
    Policy::from_yaml(
        "rules:\n  - { name: bench, key: \"u:{user}\", algorithm: gcra, limit: 1000000000, period: 1s }\n",
    )
    .unwrap()
}

/// Runs `callers` loops for `secs`; returns decisions per second and the p99 latency.
async fn run(store: Arc<RedisStore>, callers: usize, secs: u64) -> (f64, Duration) {
    let policy = Arc::new(policy());
    let (start, span) = (Instant::now(), Duration::from_secs(secs));
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let (store, policy) = (store.clone(), policy.clone());
            tokio::spawn(async move {
                let rule = policy.rule("bench").unwrap();
                let mut lat = Vec::new();
                let mut n = 0u64;
                while start.elapsed() < span {
                    let key = n.saturating_mul(64).saturating_add(i as u64) % 10_000;
                    let check = Check {
                        rule,
                        key: Cow::Owned(format!("{key}")),
                        cost: 1,
                    };
                    let t = Instant::now();
                    store.acquire(&[check], 0).await.unwrap();
                    lat.push(t.elapsed());
                    n = n.saturating_add(1);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    // No decision at all reads as a p99 of 0.
    let p99 = all
        .get(all.len().saturating_mul(99) / 100)
        .copied()
        .unwrap_or_default();
    (all.len() as f64 / secs as f64, p99)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let secs = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let store = Arc::new(
        RedisStore::new(RedisConfig {
            timeout: Duration::from_secs(1),
            near_cache: 0,
            ..RedisConfig::new(Topology::Single { url })
        })
        .unwrap(),
    );
    let (one, one_p99) = run(store.clone(), 1, secs).await;
    let (many, many_p99) = run(store, 64, secs).await;
    println!("1 caller:   {one:>10.0} decisions/s  p99 {one_p99:?}");
    println!("64 callers: {many:>10.0} decisions/s  p99 {many_p99:?}");
    println!("pipelining gain: {:.1}x", many / one);
}
