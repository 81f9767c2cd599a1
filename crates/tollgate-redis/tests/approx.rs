//! `consistency: approximate` on a real Redis: window counters decided locally, synced
//! every interval; over-admission bounded and counted, nothing lost.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::panic,
    missing_docs
)]

use std::borrow::Cow;
use std::time::Duration;

use tollgate_core::time::NANOS_PER_SEC;
use tollgate_core::{Check, Policy, Store};
use tollgate_redis::{Consistency, RedisConfig, RedisStore, Topology};
use tollgate_testkit::{Single, cli};

// Mid-minute, so a whole test stays in one window.
const T0: u64 = 1_800_000_030 * NANOS_PER_SEC;

fn store(url: &str) -> RedisStore {
    RedisStore::new(RedisConfig {
        timeout: Duration::from_secs(2),
        consistency: Consistency::Approximate {
            sync: Duration::from_millis(20),
        },
        ..RedisConfig::new(Topology::Single { url: url.into() })
    })
    .unwrap()
}

fn policy() -> Policy {
    Policy::from_yaml(
        "rules:\n  - { name: w, key: \"k:{user}\", algorithm: fixed_window, limit: 100, period: 1m }\n  - { name: g, key: \"g:{user}\", algorithm: gcra, limit: 1000, period: 1h }\n",
    )
    .unwrap()
}

fn check<'a>(p: &'a Policy, rule: &str, cost: u64) -> Check<'a> {
    Check {
        rule: p.rule(rule).unwrap(),
        key: Cow::Borrowed("a"),
        cost,
    }
}

/// Polls until `f` holds, or panics after 5 s.
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_see_each_other_after_a_sync_and_nothing_is_lost() {
    let redis = Single::start().unwrap();
    let (a, b) = (store(&redis.url()), store(&redis.url()));
    let p = policy();
    let w = [check(&p, "w", 1)];
    // A spends 60 of 100 on its own, without a call to Redis per decision.
    for _ in 0..60 {
        assert!(a.acquire(&w, T0).await.unwrap()[0].allowed);
    }
    // After A's next sync, B sees the fleet's use.
    let look = [check(&p, "w", 0)];
    until("B sees A's 60", async || {
        b.preview(&look, T0).await.unwrap()[0].remaining == 40
    })
    .await;
    // Both spend the rest at once: together they may overshoot, never lose a unit.
    let mut admitted = 60;
    for _ in 0..60 {
        admitted += u64::from(a.acquire(&w, T0).await.unwrap()[0].allowed);
        admitted += u64::from(b.acquire(&w, T0).await.unwrap()[0].allowed);
    }
    assert!((100..=140).contains(&admitted), "admitted {admitted}");
    let key = format!(
        "{}:w{}",
        a.counter_key(p.rule("w").unwrap(), "a"),
        T0 / 1_000_000 / 60_000 * 60_000
    );
    until("every admission reached Redis", async || {
        cli(redis.server.port, &["GET", &key]).unwrap().trim() == admitted.to_string()
    })
    .await;
    let over = a.approximate_stats().unwrap().0 + b.approximate_stats().unwrap().0;
    assert_eq!(
        over,
        admitted - 100,
        "the overshoot counted is what was admitted past 100"
    );
}

#[tokio::test]
async fn other_algorithms_stay_exact_and_a_mixed_decision_is_all_or_nothing() {
    let redis = Single::start().unwrap();
    let s = store(&redis.url());
    let p = policy();
    let both = [check(&p, "w", 60), check(&p, "g", 1)];
    assert!(
        s.acquire(&both, T0)
            .await
            .unwrap()
            .iter()
            .all(|o| o.allowed)
    );
    // The window has 40 left: a cost of 60 denies the whole decision.
    let denied = s.acquire(&both, T0).await.unwrap();
    assert!(!denied[0].allowed);
    assert!(denied[1].allowed);
    assert_eq!(denied[1].remaining, 999, "the exact limit consumed nothing");
    let gcra_key = s.counter_key(p.rule("g").unwrap(), "a");
    assert!(
        !cli(redis.server.port, &["GET", &gcra_key])
            .unwrap()
            .trim()
            .is_empty()
    );
}
