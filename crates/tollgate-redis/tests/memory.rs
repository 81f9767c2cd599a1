//! The Redis store under a flood of one-time keys, on a real Redis with a small
//! `maxmemory`: the counters of keys in use keep answering exactly while Redis evicts; and
//! the memory settings a store reports and warns about.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

use std::borrow::Cow;
use std::time::Duration;

use futures_util::future::join_all;
use tollgate_core::time::NANOS_PER_SEC;
use tollgate_core::{Check, Outcome, Policy, Store};
use tollgate_redis::{Clock, MemoryWarning, RedisConfig, RedisStore, Topology};
use tollgate_testkit::{Single, cli};

const T0: u64 = 1_800_000_000 * NANOS_PER_SEC;

/// The settings docs/redis.md asks for, on a Redis far smaller than the flood.
const SMALL: [&str; 4] = ["--maxmemory", "2mb", "--maxmemory-policy", "volatile-lfu"];

fn store(redis: &Single) -> RedisStore {
    RedisStore::new(RedisConfig {
        clock: Clock::Caller,
        timeout: Duration::from_secs(5),
        ..RedisConfig::new(Topology::Single { url: redis.url() })
    })
    .unwrap()
}

fn policy() -> Policy {
    Policy::from_yaml(
        r#"
rules:
  - { name: per-user, key: "u:{user}", limit: 5, period: 1m, algorithm: fixed_window }
  - { name: per-ip, key: "ip:{ip}", limit: 100, period: 1m, algorithm: sliding_window }
  - { name: strict, key: "s:{user}", limit: 3, period: 1m }
  - { name: steady, key: "d:{user}", limit: 1000000, period: 1h, algorithm: fixed_window }
"#,
    )
    .unwrap()
}

async fn one(store: &RedisStore, p: &Policy, rule: &str, key: &str) -> Outcome {
    let check = Check {
        rule: p.rule(rule).unwrap(),
        key: Cow::Owned(key.to_owned()),
        cost: 1,
    };
    store
        .acquire(std::slice::from_ref(&check), T0)
        .await
        .expect("answered by Redis")[0]
}

/// Redis's count of keys it evicted.
fn evicted_keys(redis: &Single) -> u64 {
    cli(redis.server.port, &["INFO", "stats"])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_against_a_small_redis_leaves_the_counters_in_use_exact() {
    let redis = Single::start_with(&SMALL).unwrap();
    let store = store(&redis);
    let p = policy();
    assert_eq!(store.memory_warning().await.unwrap(), None);

    // Alice spends her window, Carol her GCRA limit; Dave is a steady user.
    for _ in 0..5 {
        assert!(one(&store, &p, "per-user", "alice").await.allowed);
    }
    for _ in 0..3 {
        assert!(one(&store, &p, "strict", "carol").await.allowed);
    }
    let mut dave = 1_000_000;

    // One-time users from one-time addresses, 200 at a time, until Redis has evicted
    // for a good while.
    let mut batches = 0;
    let mut first_eviction = None;
    while first_eviction.is_none_or(|b| batches < b + 100) {
        assert!(batches < 2_000, "Redis never filled its 2 MB");
        let flood = (0..200).map(|i| {
            let (user, ip) = (format!("f{batches}-{i}"), format!("ip{batches}-{i}"));
            let (store, p) = (&store, &p);
            async move {
                let checks = [
                    Check {
                        rule: p.rule("per-user").unwrap(),
                        key: Cow::Owned(user),
                        cost: 1,
                    },
                    Check {
                        rule: p.rule("per-ip").unwrap(),
                        key: Cow::Owned(ip),
                        cost: 1,
                    },
                ];
                store.acquire(&checks, T0).await
            }
        });
        for (i, o) in join_all(flood).await.into_iter().enumerate() {
            // An error would be a refused write, answered by `on_store_error`.
            let o = o.unwrap_or_else(|e| panic!("batch {batches}, request {i}: {e}"));
            assert!(o.iter().all(|o| o.allowed));
        }
        // The keys in use answer exactly throughout.
        assert!(
            !one(&store, &p, "per-user", "alice").await.allowed,
            "batch {batches}"
        );
        assert!(
            !one(&store, &p, "strict", "carol").await.allowed,
            "batch {batches}"
        );
        dave -= 1;
        let d = one(&store, &p, "steady", "dave").await;
        assert_eq!((d.allowed, d.remaining), (true, dave), "batch {batches}");
        batches += 1;
        if first_eviction.is_none() && evicted_keys(&redis) > 0 {
            first_eviction = Some(batches);
        }
    }
    let evicted = evicted_keys(&redis);
    println!("{batches} batches of 200; Redis evicted {evicted} keys");
    assert!(evicted > 10_000, "{evicted}");

    // After the flood: still limited, and a new user is counted from the start.
    assert!(!one(&store, &p, "per-user", "alice").await.allowed);
    assert!(!one(&store, &p, "strict", "carol").await.allowed);
    let erin = one(&store, &p, "per-user", "erin").await;
    assert_eq!((erin.allowed, erin.remaining), (true, 4));
}

#[tokio::test]
async fn a_redis_that_would_grow_without_bound_or_refuse_writes_is_warned_about() {
    let default = Single::start().unwrap();
    let warning = store(&default).memory_warning().await.unwrap();
    assert_eq!(
        warning,
        Some(MemoryWarning::Unbounded {
            policy: "noeviction".into()
        })
    );
    assert!(warning.unwrap().to_string().contains("maxmemory"));

    let refusing = Single::start_with(&["--maxmemory", "64mb"]).unwrap();
    assert_eq!(
        store(&refusing).memory_warning().await.unwrap(),
        Some(MemoryWarning::RefusesWhenFull {
            maxmemory: 64 << 20
        })
    );

    // A server that hides CONFIG (as managed services do) is not an error.
    let hidden = Single::start_with(&["--rename-command", "CONFIG", "\"\""]).unwrap();
    let s = store(&hidden);
    assert_eq!(s.memory_policy().await.unwrap(), None);
    assert_eq!(s.memory_warning().await.unwrap(), None);
    s.ping().await.unwrap();
}
