//! The Redis store's own promises, on real servers: all-or-nothing decisions (also across
//! Cluster slots), penalties, server time, exact counting under concurrency, and bounded
//! answers when Redis dies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_core::time::NANOS_PER_SEC;
use tollgate_core::{Check, Policy, Store, StoreError};
use tollgate_redis::{BreakerConfig, Clock, RedisConfig, RedisStore, Topology};
use tollgate_testkit::{Cluster, Sentinels, Single, cli};

const T0: u64 = 1_800_000_000 * NANOS_PER_SEC;

fn config(topology: Topology, clock: Clock) -> RedisConfig {
    RedisConfig {
        clock,
        timeout: Duration::from_secs(2),
        ..RedisConfig::new(topology)
    }
}

fn policy() -> Policy {
    Policy::from_yaml(
        r#"
rules:
  - { name: small, key: "s:{user}", limit: 1, period: 1m, algorithm: fixed_window }
  - { name: large, key: "l:{user}", limit: 5, period: 1m, algorithm: fixed_window }
  - { name: boxed, key: "b:{user}", limit: 1, period: 1s, algorithm: gcra, on_exceed: { block_for: 10s } }
  - { name: exact, key: "e:{user}", limit: 100, period: 1h, algorithm: fixed_window, anchor: first_hit }
  - { name: hourly, key: "h:{user}", limit: 5, period: 1h, algorithm: fixed_window, anchor: first_hit }
"#,
    )
    .unwrap()
}

fn check<'a>(p: &'a Policy, rule: &str, key: &str) -> Check<'a> {
    Check {
        rule: p.rule(rule).unwrap(),
        key: Cow::Owned(key.to_owned()),
        cost: 1,
    }
}

async fn all_or_nothing(store: &RedisStore) {
    let p = policy();
    // Keys chosen so that, on a Cluster, the two counters sit in different slots.
    let checks = [check(&p, "large", "x-1"), check(&p, "small", "y-2")];
    let first = store.acquire(&checks, T0).await.unwrap();
    assert!(first.iter().all(|o| o.allowed));
    assert_eq!(first[0].remaining, 4);
    // `small` is spent: the decision denies, and `large` must not lose a unit.
    for _ in 0..3 {
        let denied = store.acquire(&checks, T0).await.unwrap();
        assert!(!denied[1].allowed);
        assert!(
            denied[0].allowed,
            "the other limit reports its state as it stays"
        );
        assert_eq!(denied[0].remaining, 4, "a denied decision consumed a unit");
    }
    let look = Check {
        cost: 0,
        ..checks[0].clone()
    };
    assert_eq!(store.preview(&[look], T0).await.unwrap()[0].remaining, 4);
}

#[tokio::test]
async fn a_denied_decision_consumes_nothing_on_a_single_node() {
    let redis = Single::start().unwrap();
    let store =
        RedisStore::new(config(Topology::Single { url: redis.url() }, Clock::Caller)).unwrap();
    all_or_nothing(&store).await;
    // Counters expire when they would read as fresh again (a 1-minute window here).
    let p = policy();
    let key = store.counter_key(p.rule("large").unwrap(), "x-1");
    let ttl: u64 = cli(redis.server.port, &["PTTL", &key])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "PTTL {ttl}");
    // A flushed script cache (a restart, a failover to a fresh node) is reloaded by itself.
    cli(redis.server.port, &["SCRIPT", "FLUSH"]).unwrap();
    let c = [check(&p, "large", "after-flush")];
    assert!(store.acquire(&c, T0).await.unwrap()[0].allowed);
}

#[tokio::test]
async fn a_denied_decision_consumes_nothing_across_cluster_slots() {
    let cluster = Cluster::start().unwrap();
    let store = RedisStore::new(config(
        Topology::Cluster {
            urls: cluster.urls(),
        },
        Clock::Caller,
    ))
    .unwrap();
    let p = policy();
    let slot = |c: &Check<'_>| {
        let key = store.counter_key(c.rule, &c.key);
        cli(cluster.nodes[0].port, &["CLUSTER", "KEYSLOT", &key]).unwrap()
    };
    assert_ne!(
        slot(&check(&p, "large", "x-1")),
        slot(&check(&p, "small", "y-2"))
    );
    all_or_nothing(&store).await;
}

#[tokio::test]
async fn a_penalty_blocks_and_is_then_answered_without_redis() {
    let mut redis = Single::start().unwrap();
    let store =
        RedisStore::new(config(Topology::Single { url: redis.url() }, Clock::Caller)).unwrap();
    let p = policy();
    let c = [check(&p, "boxed", "u")];
    assert!(store.acquire(&c, T0).await.unwrap()[0].allowed);
    let denied = store.acquire(&c, T0).await.unwrap();
    assert!(!denied[0].allowed && !denied[0].blocked);
    let later = T0 + 5 * NANOS_PER_SEC;
    let blocked = store.acquire(&c, later).await.unwrap();
    assert!(blocked[0].blocked, "{blocked:?}");
    assert_eq!(blocked[0].retry_after, Some(5 * NANOS_PER_SEC));
    // With Redis gone, the near cache still knows the counter is blocked.
    redis.server.kill();
    let cached = store.acquire(&c, later + NANOS_PER_SEC).await.unwrap();
    assert!(cached[0].blocked);
    assert_eq!(cached[0].retry_after, Some(4 * NANOS_PER_SEC));
}

#[tokio::test]
async fn server_time_makes_skewed_instances_agree() {
    let redis = Single::start().unwrap();
    let a = RedisStore::new(config(Topology::Single { url: redis.url() }, Clock::Server)).unwrap();
    let b = RedisStore::new(config(Topology::Single { url: redis.url() }, Clock::Server)).unwrap();
    let p = policy();
    // Windows start at the first hit, so no clock boundary can fall inside the test.
    let c = [check(&p, "hourly", "skew")];
    // The callers' clocks are an hour apart; Redis's clock decides for both.
    let mut admitted = 0;
    for i in 0..8 {
        let (store, now) = if i % 2 == 0 {
            (&a, T0)
        } else {
            (&b, T0 + 3600 * NANOS_PER_SEC)
        };
        admitted += usize::from(store.acquire(&c, now).await.unwrap()[0].allowed);
    }
    assert_eq!(admitted, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_admit_exactly_the_limit() {
    let redis = Single::start().unwrap();
    let store = Arc::new(
        RedisStore::new(config(Topology::Single { url: redis.url() }, Clock::Server)).unwrap(),
    );
    let p = Arc::new(policy());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, p) = (store.clone(), p.clone());
            tokio::spawn(async move {
                let mut admitted = 0u32;
                for _ in 0..10 {
                    let c = [check(&p, "exact", "crowd")];
                    admitted += u32::from(store.acquire(&c, 0).await.unwrap()[0].allowed);
                }
                admitted
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 100, "640 attempts on a limit of 100");
}

#[tokio::test]
async fn a_dead_redis_fails_fast_and_recovery_is_quick() {
    let mut redis = Single::start().unwrap();
    let store = RedisStore::new(RedisConfig {
        timeout: Duration::from_millis(50),
        breaker: BreakerConfig {
            failures: 2,
            cool_down: Duration::from_millis(100),
        },
        ..config(Topology::Single { url: redis.url() }, Clock::Server)
    })
    .unwrap();
    let p = policy();
    let c = [check(&p, "exact", "chaos")];
    assert!(store.acquire(&c, 0).await.is_ok());
    redis.server.kill();
    for _ in 0..50 {
        let started = Instant::now();
        let result = store.acquire(&c, 0).await;
        assert!(matches!(
            result,
            Err(StoreError::Timeout | StoreError::Unavailable(_))
        ));
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(store.breaker_state().name(), "open");
    redis.server.restart().unwrap();
    let back = Instant::now();
    let mut ok = false;
    while back.elapsed() < Duration::from_secs(1) {
        if store.acquire(&c, 0).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ok, "not back within 1 s of the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_is_followed() {
    let mut set = Sentinels::start().unwrap();
    let store = RedisStore::new(RedisConfig {
        timeout: Duration::from_millis(200),
        breaker: BreakerConfig {
            failures: 3,
            cool_down: Duration::from_millis(100),
        },
        ..config(
            Topology::Sentinel {
                urls: set.urls(),
                master: Sentinels::MASTER.into(),
            },
            Clock::Server,
        )
    })
    .unwrap();
    let p = policy();
    assert_eq!(round(&store, &p).await, 0);
    let old = set.primary_port().unwrap();
    set.data[0].kill();
    let killed = Instant::now();
    let mut errors = 0u32;
    let mut recovered = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let e = round(&store, &p).await;
        errors += e;
        if e == 0 && set.primary_port().is_some_and(|p| p != old) {
            recovered = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = recovered
        .unwrap_or_else(|| panic!("no full round on the promoted replica ({errors} errors)"));
    eprintln!("sentinel failover: {errors} failed decisions, all served again after {recovered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_primary_failover_is_followed() {
    let mut cluster = Cluster::start().unwrap();
    let store = RedisStore::new(RedisConfig {
        timeout: Duration::from_millis(300),
        breaker: BreakerConfig {
            failures: 3,
            cool_down: Duration::from_millis(100),
        },
        ..config(
            Topology::Cluster {
                urls: cluster.urls(),
            },
            Clock::Server,
        )
    })
    .unwrap();
    let p = policy();
    assert_eq!(round(&store, &p).await, 0);
    cluster.nodes[0].kill();
    let killed = Instant::now();
    let mut errors = 0u32;
    let mut worst = 0u32;
    let mut recovered = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let e = round(&store, &p).await;
        errors += e;
        worst = worst.max(e);
        if e == 0 {
            recovered = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered =
        recovered.unwrap_or_else(|| panic!("no full round within 30 s ({errors} errors)"));
    // Errors are counted and bounded: only while the replica is being promoted.
    assert!(
        errors > 0 && recovered < Duration::from_secs(15),
        "{errors} errors, back after {recovered:?}"
    );
    let _ = worst;
    eprintln!(
        "cluster failover: {errors} failed decisions (at most {worst} of 64 in a round), every key served again after {recovered:?}"
    );
}

/// One decision on each of 64 keys at once (every Cluster primary holds some); how many
/// failed. No call may take much past the store's timeout.
async fn round(store: &RedisStore, p: &Policy) -> u32 {
    let calls = (0..64).map(|k| async move {
        let key = format!("k{k}");
        let started = Instant::now();
        let failed = store.acquire(&[check(p, "exact", &key)], 0).await.is_err();
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
        u32::from(failed)
    });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .sum()
}

/// A lease renewed before its `lease_ttl` runs out lives a `lease_ttl` from its renewal; one
/// that ran out, or was released, is not brought back.
async fn renewal(store: &impl Store) {
    let p = Policy::from_yaml(
        "rules: [{ name: jobs, key: \"j:{user}\", algorithm: concurrency, limit: 1, lease_ttl: 10s }]",
    )
    .unwrap();
    let job = check(&p, "jobs", "j:renewed");
    let rule = p.rule("jobs").unwrap();
    let first = store.acquire(std::slice::from_ref(&job), T0).await.unwrap();
    let lease = first[0].lease.unwrap().get();
    let s = NANOS_PER_SEC;
    // Renewed at 8 s: held until 18 s, past the 10 s it was first taken for.
    assert!(
        store
            .renew(rule, "j:renewed", lease, T0 + 8 * s)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire(std::slice::from_ref(&job), T0 + 12 * s)
            .await
            .unwrap()[0]
            .allowed
    );
    assert!(
        !store
            .acquire(std::slice::from_ref(&job), T0 + 17 * s)
            .await
            .unwrap()[0]
            .allowed
    );
    // Not renewed again: it ends at 18 s, and cannot be renewed after.
    assert!(
        !store
            .renew(rule, "j:renewed", lease, T0 + 19 * s)
            .await
            .unwrap()
    );
    let next = store
        .acquire(std::slice::from_ref(&job), T0 + 19 * s)
        .await
        .unwrap();
    assert!(next[0].allowed);
    // A released lease is not renewed either.
    let next_lease = next[0].lease.unwrap().get();
    assert!(
        store
            .release(rule, "j:renewed", next_lease, T0 + 20 * s)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew(rule, "j:renewed", next_lease, T0 + 20 * s)
            .await
            .unwrap()
    );
    // A lease that was never taken, or a rule that takes none, renews nothing.
    assert!(
        !store
            .renew(rule, "j:renewed", 999_999, T0 + 20 * s)
            .await
            .unwrap()
    );
    let other = policy();
    assert!(
        !store
            .renew(other.rule("small").unwrap(), "s:x", 1, T0)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn leases_are_renewed_alike_in_memory_and_on_redis() {
    renewal(&tollgate_core::MemoryStore::new(Default::default())).await;
    let redis = Single::start().unwrap();
    let store =
        RedisStore::new(config(Topology::Single { url: redis.url() }, Clock::Caller)).unwrap();
    renewal(&store).await;
}

#[test]
fn decisions_from_runtimes_of_their_own_are_exact_each_on_its_connection() {
    // As the server runs its doors: a current-thread runtime per core, one store shared,
    // made on a runtime of its own.
    let redis = Single::start().unwrap();
    let outer = tokio::runtime::Runtime::new().unwrap();
    let _made_on = outer.enter();
    let store = Arc::new(
        RedisStore::new(config(Topology::Single { url: redis.url() }, Clock::Server)).unwrap(),
    );
    let p = Arc::new(policy());
    // Held at the end of each runtime's decisions, while its connection is still open.
    let (decided, counted) = (
        Arc::new(std::sync::Barrier::new(4)),
        Arc::new(std::sync::Barrier::new(4)),
    );
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (store, p) = (store.clone(), p.clone());
            let (decided, counted) = (decided.clone(), counted.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let tasks: Vec<_> = (0..32)
                        .map(|_| {
                            let (store, p) = (store.clone(), p.clone());
                            tokio::spawn(async move {
                                let mut admitted = 0u32;
                                for _ in 0..5 {
                                    let c = [check(&p, "exact", "runtimes")];
                                    let o = store.acquire(&c, 0).await.unwrap();
                                    admitted += u32::from(o[0].allowed);
                                }
                                admitted
                            })
                        })
                        .collect();
                    let mut total = 0;
                    for t in tasks {
                        total += t.await.unwrap();
                    }
                    decided.wait();
                    counted.wait();
                    total
                })
            })
        })
        .collect();
    decided.wait();
    let clients = cli(redis.server.port, &["CLIENT", "LIST"]).unwrap();
    counted.wait();
    let total: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        total, 100,
        "480 attempts from three runtimes on a limit of 100"
    );
    assert_eq!(
        clients.lines().count(),
        4,
        "each runtime coalesces on a connection of its own (and the listing on one): {clients}"
    );

    // A flushed script cache is reloaded on the coalesced path too.
    cli(redis.server.port, &["SCRIPT", "FLUSH"]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = [check(&p, "exact", "after-flush")];
    assert!(rt.block_on(store.acquire(&c, 0)).unwrap()[0].allowed);
}
