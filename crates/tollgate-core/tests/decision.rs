//! Whole decisions through the limiter: codes, headers, all-or-nothing, penalties, shadow
//! rules, dry runs and fail policies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use common::block_on;
use tollgate_core::policy::Rule;
use tollgate_core::store::Outcomes;
use tollgate_core::time::{NANOS_PER_SEC as S, Nanos};
use tollgate_core::{
    Check, Code, Limiter, MemoryStore, MemoryStoreConfig, Mode, Policy, Store, StoreError, Subject,
};

/// 2026-01-05T00:00:00Z, the start of a minute.
const T0: Nanos = 1_767_571_200 * S;

fn limiter(yaml: &str) -> Limiter<MemoryStore> {
    Limiter::new(
        MemoryStore::new(MemoryStoreConfig { capacity: 10_000 }),
        Policy::from_yaml(yaml).unwrap(),
    )
}

fn user(id: &str) -> Subject {
    Subject::new().with("user", id).unwrap()
}

fn decide(
    l: &Limiter<MemoryStore>,
    s: &Subject,
    cost: u64,
    now: Nanos,
) -> (bool, Code, Vec<(String, String)>, Vec<u64>) {
    let policy = l.policy();
    let d = block_on(l.decide(&policy, s, cost, now, Mode::Consume));
    let headers = d
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let remaining = d.limits.iter().map(|l| l.outcome.remaining).collect();
    (d.allowed, d.code, headers, remaining)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn headers_are_exact() {
    let l = limiter(
        "rules: [{name: per-user, key: 'user:{user}', algorithm: fixed_window, limit: 100, period: 1m}]",
    );
    let u = user("42");
    for _ in 0..57 {
        assert!(decide(&l, &u, 1, T0).0);
    }
    let (allowed, code, h, _) = decide(&l, &u, 1, T0 + 43 * S);
    assert!(allowed);
    assert_eq!(code, Code::Ok);
    assert_eq!(
        header(&h, "ratelimit-policy"),
        Some(r#""per-user";q=100;w=60"#)
    );
    assert_eq!(header(&h, "ratelimit"), Some(r#""per-user";r=42;t=17"#));
    assert_eq!(header(&h, "x-ratelimit-limit"), Some("100"));
    assert_eq!(header(&h, "x-ratelimit-remaining"), Some("42"));
    assert_eq!(header(&h, "x-ratelimit-reset"), Some("17"));
    assert_eq!(header(&h, "retry-after"), None);
}

/// `RateLimit`'s `r` never exceeds `RateLimit-Policy`'s `q`: a bucket with a burst shows
/// its size and the time to fill it (the same rate), a quota its period's allowance with
/// the rollover.
#[test]
fn remaining_never_exceeds_the_quota_shown() {
    let l = limiter(
        "rules:
  - {name: gcra, key: 'g:{user}', algorithm: gcra, limit: 100, period: 1m, burst: 20}
  - {name: bucket, key: 'b:{user}', algorithm: token_bucket, limit: 5, period: 1s, burst: 2}
  - {name: plain, key: 'p:{user}', algorithm: gcra, limit: 100, period: 1m}",
    );
    let (_, _, h, _) = decide(&l, &user("1"), 1, T0);
    assert_eq!(
        header(&h, "ratelimit-policy"),
        Some(r#""gcra";q=120;w=72, "bucket";q=7;w=2, "plain";q=100;w=60"#)
    );
    assert_eq!(
        header(&h, "ratelimit"),
        Some(r#""gcra";r=119;t=1, "bucket";r=6;t=1, "plain";r=99;t=1"#)
    );

    let l = limiter(
        "rules: [{name: q, key: '{user}', algorithm: quota, limit: 10, period: hour, rollover_cap: 5}]",
    );
    let u = user("2");
    for _ in 0..2 {
        assert!(decide(&l, &u, 1, T0).0);
    }
    // The next hour holds 10 and the 5 carried over.
    let (_, _, h, remaining) = decide(&l, &u, 1, T0 + 3_600 * S);
    assert_eq!(remaining, [14]);
    assert_eq!(header(&h, "ratelimit-policy"), Some(r#""q";q=15;w=3600"#));
    assert_eq!(header(&h, "ratelimit"), Some(r#""q";r=14;t=3600"#));
}

#[test]
fn first_n_pass_then_denied_with_retry_after_never_before_t() {
    let l = limiter(
        "rules:
  - {name: burst, key: '{user}', limit: 3, period: 1s}
  - {name: hourly, key: '{user}', algorithm: sliding_log, limit: 5, period: 1h}",
    );
    let u = user("7");
    for _ in 0..3 {
        assert!(decide(&l, &u, 1, T0).0);
    }
    let (allowed, code, h, _) = decide(&l, &u, 1, T0 + S / 10);
    assert!(!allowed);
    assert_eq!(code, Code::RateLimited);
    assert_eq!(
        header(&h, "ratelimit"),
        Some(r#""burst";r=0;t=1, "hourly";r=2;t=3600"#)
    );
    assert_eq!(header(&h, "retry-after"), Some("1"));
    // At one second in, the burst limit admits again; two more use up the hourly log.
    assert!(decide(&l, &u, 1, T0 + S).0);
    assert!(decide(&l, &u, 1, T0 + 2 * S).0);
    let (allowed, _, h, _) = decide(&l, &u, 1, T0 + 3 * S);
    assert!(!allowed);
    // Both deny: Retry-After is the later of the two, so never earlier than any t.
    let rl = header(&h, "ratelimit").unwrap();
    assert!(rl.contains(r#""hourly";r=0;t=3597"#), "{rl}");
    assert_eq!(header(&h, "retry-after"), Some("3597"));
}

#[test]
fn a_denied_decision_consumes_nothing() {
    let l = limiter(
        "rules:
  - {name: wide, key: '{user}', algorithm: fixed_window, limit: 100, period: 1m}
  - {name: narrow, key: '{user}', algorithm: fixed_window, limit: 2, period: 1m}",
    );
    let u = user("1");
    assert_eq!(decide(&l, &u, 1, T0).3, [99, 1]);
    assert_eq!(decide(&l, &u, 1, T0).3, [98, 0]);
    for _ in 0..10 {
        let (allowed, _, _, remaining) = decide(&l, &u, 1, T0);
        assert!(!allowed);
        assert_eq!(remaining, [98, 0], "the wide limit must not be charged");
    }
}

#[test]
fn penalty_box_blocks_after_a_denial() {
    let l = limiter(
        "rules: [{name: login, key: '{user}', limit: 1, period: 1s, on_exceed: {block_for: 10m}}]",
    );
    let u = user("x");
    assert!(decide(&l, &u, 1, T0).0);
    let (allowed, code, _, _) = decide(&l, &u, 1, T0);
    assert!(!allowed);
    assert_eq!(code, Code::RateLimited);
    // The rate limit alone would admit after a second; the penalty holds for ten minutes.
    let (allowed, code, h, _) = decide(&l, &u, 1, T0 + 5 * S);
    assert!(!allowed);
    assert_eq!(code, Code::Blocked);
    assert_eq!(header(&h, "retry-after"), Some("595"));
    assert!(decide(&l, &u, 1, T0 + 600 * S).0);
}

#[test]
fn quota_denials_say_so() {
    let l = limiter(
        "rules: [{name: monthly, key: '{user}', algorithm: quota, limit: 2, period: month}]",
    );
    let u = user("q");
    assert!(decide(&l, &u, 2, T0).0);
    let (allowed, code, h, _) = decide(&l, &u, 1, T0);
    assert!(!allowed);
    assert_eq!(code, Code::QuotaExceeded);
    // From 2026-01-05 to 2026-02-01: 27 days.
    assert_eq!(header(&h, "retry-after"), Some("2332800"));
    assert_eq!(
        header(&h, "ratelimit-policy"),
        Some(r#""monthly";q=2;w=2678400"#)
    );
}

#[test]
fn shadow_rules_report_but_never_deny() {
    let l = limiter(
        "rules:
  - {name: real, key: '{user}', limit: 10, period: 1m}
  - {name: trial, key: '{user}', limit: 1, period: 1m, shadow: true}",
    );
    let u = user("s");
    assert!(decide(&l, &u, 1, T0).0);
    let policy = l.policy();
    let d = block_on(l.decide(&policy, &u, 1, T0, Mode::Consume));
    assert!(d.allowed);
    assert_eq!(d.code, Code::Ok);
    assert!(d.limits[1].exceeded() && d.limits[1].shadow());
    assert_eq!(d.limits[0].outcome.remaining, 8);
    let h = d.headers();
    assert!(!h.get("ratelimit-policy").unwrap().contains("trial"));
}

#[test]
fn lists_decide_alone() {
    let l = limiter(
        "rules: [{name: r, key: '{user}', limit: 1, period: 1m}]\nallow: {users: [ops]}\ndeny: {ips: ['203.0.113.0/24']}",
    );
    for _ in 0..5 {
        assert!(decide(&l, &user("ops"), 1, T0).0);
    }
    let s = Subject::new()
        .with("user", "a")
        .unwrap()
        .with("ip", "203.0.113.50")
        .unwrap();
    let (allowed, code, h, _) = decide(&l, &s, 1, T0);
    assert!(!allowed);
    assert_eq!(code, Code::Blocked);
    assert!(h.is_empty());
}

#[test]
fn dry_runs_consume_nothing() {
    let l = limiter("rules: [{name: r, key: '{user}', limit: 2, period: 1m}]");
    let u = user("d");
    let policy = l.policy();
    for _ in 0..5 {
        let d = block_on(l.decide(&policy, &u, 2, T0, Mode::Preview));
        assert!(d.allowed);
        assert_eq!(d.limits[0].outcome.remaining, 0);
    }
    assert!(decide(&l, &u, 2, T0).0);
    let d = block_on(l.decide(&policy, &u, 1, T0, Mode::Preview));
    assert!(!d.allowed);
}

/// A store that cannot be reached, as a Redis behind a partition.
#[derive(Debug)]
struct Unreachable;

impl Store for Unreachable {
    async fn acquire(&self, _: &[Check<'_>], _: Nanos) -> Result<Outcomes, StoreError> {
        Err(StoreError::Unavailable("unreachable".into()))
    }

    async fn preview(&self, _: &[Check<'_>], _: Nanos) -> Result<Outcomes, StoreError> {
        Err(StoreError::Unavailable("unreachable".into()))
    }

    async fn release(&self, _: &Rule, _: &str, _: u64, _: Nanos) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("unreachable".into()))
    }

    async fn renew(&self, _: &Rule, _: &str, _: u64, _: Nanos) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("unreachable".into()))
    }

    async fn reset(&self, _: &Rule, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("unreachable".into()))
    }
}

#[test]
fn a_failing_store_answers_by_each_rules_fail_policy() {
    let rule = |fail: &str| {
        Policy::from_yaml(&format!(
            "rules: [{{name: r, key: '{{user}}', limit: 1, period: 1m, on_store_error: {fail}}}]"
        ))
        .unwrap()
    };
    let l = Limiter::new(Unreachable, rule("allow"));
    let degraded = |user: &str| {
        let policy = l.policy();
        let d = block_on(l.decide(&policy, &user_subject(user), 1, T0, Mode::Consume));
        (d.allowed, d.code, d.limits[0].degraded)
    };
    for _ in 0..3 {
        assert_eq!(degraded("u"), (true, Code::Ok, true));
    }
    l.set_policy(rule("deny"));
    assert_eq!(degraded("u"), (false, Code::Unavailable, true));
    l.set_policy(rule("local"));
    assert_eq!(degraded("u"), (true, Code::Ok, true));
    assert_eq!(
        degraded("u"),
        (false, Code::RateLimited, true),
        "the local fallback enforces the same limit"
    );
}

#[test]
fn a_full_memory_store_still_decides_every_new_key() {
    let policy = Policy::from_yaml(
        "rules: [{name: r, key: '{user}', limit: 1, period: 1m, on_store_error: deny}]",
    )
    .unwrap();
    let l = Limiter::new(MemoryStore::new(MemoryStoreConfig { capacity: 1 }), policy);
    let decide = |user: &str| {
        let policy = l.policy();
        let d = block_on(l.decide(&policy, &user_subject(user), 1, T0, Mode::Consume));
        (d.allowed, d.code, d.limits[0].degraded)
    };
    assert_eq!(decide("0"), (true, Code::Ok, false));
    // Far more keys than the store holds: each is decided by the store, none degraded.
    for i in 1..5_000 {
        assert_eq!(decide(&i.to_string()), (true, Code::Ok, false), "user {i}");
    }
    // A key checked again is limited as it should be.
    assert_eq!(decide("4999"), (false, Code::RateLimited, false));
}

fn user_subject(user: &str) -> Subject {
    Subject::new().with("user", user).unwrap()
}

#[test]
fn concurrency_leases_are_released() {
    let l = limiter(
        "rules: [{name: jobs, key: '{user}', algorithm: concurrency, limit: 1, lease_ttl: 30s}]",
    );
    let u = user("c");
    let policy = l.policy();
    let d = block_on(l.decide(&policy, &u, 1, T0, Mode::Consume));
    let lease = d.limits[0].outcome.lease.unwrap().get();
    assert!(!decide(&l, &u, 1, T0).0);
    use tollgate_core::Store;
    assert!(
        block_on(
            l.store()
                .release(&policy.rules()[0], &d.limits[0].key, lease, T0 + S)
        )
        .unwrap()
    );
    assert!(decide(&l, &u, 1, T0 + S).0);
}

#[test]
fn reset_forgets_a_counter() {
    use tollgate_core::Store;
    let l = limiter(
        "rules: [{name: r, key: 'u:{user}', limit: 1, period: 1h, on_exceed: {block_for: 1h}}]",
    );
    let u = user("z");
    assert!(decide(&l, &u, 1, T0).0);
    assert!(!decide(&l, &u, 1, T0).0);
    let policy = l.policy();
    block_on(l.store().reset(&policy.rules()[0], "u:z")).unwrap();
    assert!(decide(&l, &u, 1, T0).0);
}

#[test]
fn a_blocked_limit_stops_the_whole_decision_and_charges_nothing() {
    let l = limiter(
        "rules:
  - {name: wide, key: '{user}', algorithm: fixed_window, limit: 100, period: 1h}
  - {name: login, key: '{user}', algorithm: fixed_window, limit: 1, period: 1s, on_exceed: {block_for: 10m}}",
    );
    let u = user("b");
    assert_eq!(decide(&l, &u, 1, T0).3, [99, 0]);
    // The second request is denied by the count and opens the penalty.
    let (allowed, code, _, remaining) = decide(&l, &u, 1, T0);
    assert!(!allowed);
    assert_eq!(code, Code::RateLimited);
    assert_eq!(remaining, [99, 0]);
    // A second later the count alone would admit, but the penalty holds, and the wide
    // limit is charged nothing while it does.
    for _ in 0..5 {
        let (allowed, code, _, remaining) = decide(&l, &u, 1, T0 + 5 * S);
        assert!(!allowed);
        assert_eq!(code, Code::Blocked);
        assert_eq!(remaining[0], 99, "the wide limit must not be charged");
    }
}

#[test]
fn a_plan_decided_in_place_answers_as_the_awaited_path() {
    let yaml = r#"
rules:
  - { name: per-user, key: "u:{user}", limit: 3, period: 1m, algorithm: gcra }
  - { name: per-user-window, key: "w:{user}", limit: 2, period: 1m, algorithm: fixed_window }
"#;
    let (awaited, in_place) = (limiter(yaml), limiter(yaml));
    assert!(in_place.store().answers_at_once());
    let policy_a = awaited.policy();
    let policy_b = in_place.policy();
    for (i, mode) in [Mode::Consume, Mode::Preview, Mode::Consume, Mode::Consume]
        .into_iter()
        .enumerate()
    {
        let now = T0 + i as u64 * S;
        let a = block_on(awaited.decide_plan(policy_a.plan(&user("ann"), 1), now, mode));
        let b = in_place
            .decide_plan_now(policy_b.plan(&user("ann"), 1), now, mode)
            .expect("the memory store answers at once");
        assert_eq!((a.allowed, a.code), (b.allowed, b.code), "decision {i}");
        assert_eq!(a.headers().0, b.headers().0, "decision {i}");
    }
    // The third consuming decision meets the window's limit of two.
    let denied = in_place
        .decide_plan_now(policy_b.plan(&user("ann"), 1), T0 + 9 * S, Mode::Consume)
        .unwrap();
    assert_eq!(denied.code, Code::RateLimited);

    // Shadow limits take the awaited path.
    let shadowed =
        limiter("rules: [{name: s, key: 'u:{user}', limit: 1, period: 1m, shadow: true}]");
    let policy = shadowed.policy();
    assert!(policy.has_shadow_rules());
    assert!(
        shadowed
            .decide_plan_now(policy.plan(&user("ann"), 1), T0, Mode::Consume)
            .is_none()
    );
}
