//! Jobs, leases, billing usage and records, owners, alerts and dead letters, on SQLite (a
//! temporary file) and on a real PostgreSQL server; races run two registries (two pools, as
//! two instances would) against one database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::HashMap;
use std::time::Duration;

use tollgate_registry::{
    AlertChange, AlertEventKind, AlertFilter, BillingFilter, BillingRecord, BillingScope,
    DeadLetterClaim, DeadLetterFilter, JobFilter, JobState, KeySecret, NewDeadLetter, NewJob,
    NewKey, OwnerContact, Registry, ReplayClaim, UsageEvent,
};
use tollgate_testkit::Postgres;

const T0: i64 = 1_800_000_000_000;

fn secret() -> KeySecret {
    KeySecret::new(b"a server secret of at least 32 bytes!".to_vec()).unwrap()
}

fn job(key: &str) -> NewJob {
    NewJob {
        kind: "deliver".into(),
        payload: serde_json::json!({"n": key}),
        idempotency_key: key.into(),
        max_attempts: 3,
        run_at: T0,
    }
}

async fn jobs(reg: &Registry) {
    assert!(reg.enqueue(&job("a"), T0).await.unwrap());
    // The same effect queued again is one job.
    assert!(!reg.enqueue(&job("a"), T0).await.unwrap());
    let mut later = job("b");
    later.run_at = T0 + 60_000;
    assert!(reg.enqueue(&later, T0).await.unwrap());

    // Only due jobs of the kinds asked for are handed out, once.
    assert!(
        reg.claim_jobs("w1", &["other"], 10, Duration::from_secs(30), T0)
            .await
            .unwrap()
            .is_empty()
    );
    let got = reg
        .claim_jobs("w1", &["deliver"], 10, Duration::from_secs(30), T0)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let a = &got[0];
    assert_eq!((a.idempotency_key.as_str(), a.attempts), ("a", 1));
    assert_eq!(a.payload["n"], "a");
    assert!(
        reg.claim_jobs("w2", &["deliver"], 10, Duration::from_secs(30), T0)
            .await
            .unwrap()
            .is_empty()
    );

    // A failed try goes back in the queue for its time; the last one dead-letters.
    assert_eq!(
        reg.fail_job(&a.id, "w1", "503", Some(T0 + 1_000), T0)
            .await
            .unwrap(),
        Some(JobState::Queued)
    );
    // Someone else's job cannot be finished.
    assert_eq!(
        reg.fail_job(&a.id, "w2", "x", Some(T0), T0).await.unwrap(),
        None
    );
    let again = reg
        .claim_jobs("w2", &["deliver"], 10, Duration::from_secs(30), T0 + 1_000)
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    // A worker that dies: its lease lapses and another takes the job.
    let third = reg
        .claim_jobs("w3", &["deliver"], 10, Duration::from_secs(30), T0 + 40_000)
        .await
        .unwrap();
    assert_eq!((third.len(), third[0].attempts), (1, 3));
    assert!(!reg.complete_job(&a.id, "w2", T0 + 40_001).await.unwrap());
    assert_eq!(
        reg.fail_job(&a.id, "w3", "still 503", Some(T0 + 50_000), T0 + 40_001)
            .await
            .unwrap(),
        Some(JobState::Dead)
    );
    let dead = reg.job(&a.id).await.unwrap().unwrap();
    assert_eq!(dead.last_error.as_deref(), Some("still 503"));
    let listed = reg
        .jobs(&JobFilter {
            state: Some(JobState::Dead),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    // An operator retries it (fresh tries), and it is done; discarding needs a dead or
    // queued job.
    assert!(reg.retry_job(&a.id, T0 + 60_000).await.unwrap());
    let retried = reg
        .claim_jobs("w1", &["deliver"], 10, Duration::from_secs(30), T0 + 60_000)
        .await
        .unwrap();
    assert_eq!(retried.len(), 2, "the retried job and the one now due");
    for j in &retried {
        assert!(reg.complete_job(&j.id, "w1", T0 + 60_001).await.unwrap());
    }
    assert!(!reg.discard_job(&a.id, T0 + 60_002).await.unwrap());
    let mut c = job("c");
    c.max_attempts = 1;
    reg.enqueue(&c, T0).await.unwrap();
    let cid = reg
        .claim_jobs("w1", &["deliver"], 10, Duration::from_secs(30), T0 + 60_000)
        .await
        .unwrap()[0]
        .id
        .clone();
    // A failure for good dead-letters at once.
    assert_eq!(
        reg.fail_job(&cid, "w1", "400", None, T0 + 60_000)
            .await
            .unwrap(),
        Some(JobState::Dead)
    );
    assert!(reg.discard_job(&cid, T0 + 60_003).await.unwrap());
    let counts: HashMap<JobState, i64> = reg
        .job_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.state, c.count))
        .collect();
    assert_eq!(counts.get(&JobState::Done), Some(&2));
    assert_eq!(counts.get(&JobState::Discarded), Some(&1));
    assert_eq!(reg.prune_jobs(T0 + 70_000).await.unwrap(), 3);
}

/// Two instances' workers race for the same 1,000 jobs: each is done exactly once.
async fn race(a: &Registry, b: &Registry) {
    for i in 0..1_000 {
        a.enqueue(&job(&format!("race-{i}")), T0).await.unwrap();
    }
    let mut workers = Vec::new();
    for (n, reg) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        workers.push(tokio::spawn(async move {
            let me = format!("worker-{n}");
            let mut done = Vec::new();
            loop {
                let got = reg
                    .claim_jobs(&me, &["deliver"], 25, Duration::from_secs(60), T0)
                    .await
                    .unwrap();
                if got.is_empty() {
                    return done;
                }
                for j in got {
                    assert!(reg.complete_job(&j.id, &me, T0).await.unwrap());
                    done.push(j.idempotency_key);
                }
            }
        }));
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for w in workers {
        let done = w.await.unwrap();
        busy += usize::from(!done.is_empty());
        all.extend(done);
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (1_000, 1_000), "every job once");
    assert!(busy >= 2, "the work was shared");
}

async fn leases(a: &Registry, b: &Registry) {
    let ttl = Duration::from_secs(10);
    assert!(a.acquire_lease("leader", "a", ttl, T0).await.unwrap());
    assert!(
        !b.acquire_lease("leader", "b", ttl, T0 + 1_000)
            .await
            .unwrap()
    );
    // The holder renews; the other waits until it lapses, then takes it.
    assert!(
        a.acquire_lease("leader", "a", ttl, T0 + 5_000)
            .await
            .unwrap()
    );
    assert!(
        !b.acquire_lease("leader", "b", ttl, T0 + 14_000)
            .await
            .unwrap()
    );
    assert!(
        b.acquire_lease("leader", "b", ttl, T0 + 15_001)
            .await
            .unwrap()
    );
    assert!(
        !a.acquire_lease("leader", "a", ttl, T0 + 15_002)
            .await
            .unwrap()
    );
    assert_eq!(
        a.lease_holder("leader").await.unwrap(),
        Some(("b".to_string(), T0 + 25_001))
    );
    // Given up, it passes at once.
    b.release_lease("leader", "b").await.unwrap();
    assert!(
        a.acquire_lease("leader", "a", ttl, T0 + 15_003)
            .await
            .unwrap()
    );
}

fn used(key: &str, owner: &str, tier: &str, at: i64, cost: i64, allowed: bool) -> UsageEvent {
    UsageEvent {
        at,
        key_id: key.into(),
        owner: owner.into(),
        tier: tier.into(),
        allowed,
        code: if allowed { "OK" } else { "RATE_LIMITED" }.into(),
        cost,
    }
}

async fn billing(a: &Registry, b: &Registry) {
    let (k1, _) = a
        .create_key(
            &NewKey {
                env: "test".into(),
                name: "one".into(),
                owner: "acme".into(),
                tier: "pro".into(),
                expires_at: None,
                metadata: serde_json::Value::Null,
                overrides: serde_json::Value::Null,
            },
            T0 - 86_400_000,
        )
        .await
        .unwrap();
    let (idle, _) = a
        .create_key(
            &NewKey {
                env: "test".into(),
                name: "idle".into(),
                owner: "quiet".into(),
                tier: "pro".into(),
                expires_at: None,
                metadata: serde_json::Value::Null,
                overrides: serde_json::Value::Null,
            },
            T0 - 86_400_000,
        )
        .await
        .unwrap();
    let end = T0 + 3_600_000;
    a.write_usage(
        &[
            used(&k1.id, "acme", "pro", T0 - 1, 5, true),
            used(&k1.id, "acme", "pro", T0, 2, true),
            used(&k1.id, "acme", "pro", T0 + 899_999, 3, true),
            used(&k1.id, "acme", "pro", T0 + 900_000, 7, false),
            used(&k1.id, "acme", "free", end - 1, 11, true),
            used(&k1.id, "acme", "pro", end, 13, true),
        ],
        &[],
    )
    .await
    .unwrap();
    // Only admitted units in the period, under the tier they were admitted under; an
    // account with a live key and no use is billed too.
    let pro = a
        .billed_usage(BillingScope::Owner, "pro", T0, end)
        .await
        .unwrap();
    let by: HashMap<&str, (i64, i64)> = pro
        .iter()
        .map(|u| (u.account.as_str(), (u.requests, u.units)))
        .collect();
    assert_eq!(by.get("acme"), Some(&(2, 5)));
    assert_eq!(by.get("quiet"), Some(&(0, 0)));
    let per_key = a
        .billed_usage(BillingScope::Key, "pro", T0, end)
        .await
        .unwrap();
    assert_eq!(per_key.len(), 2);
    assert!(
        per_key
            .iter()
            .any(|u| u.account == idle.id && u.owner == "quiet")
    );
    let now: Vec<(String, i64)> = a
        .account_usage(BillingScope::Owner, "acme", T0, end)
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.tier, u.units))
        .collect();
    assert_eq!(now, vec![("free".into(), 11), ("pro".into(), 5)]);

    // Closing is idempotent, also when two instances close the same period at once; the
    // jobs it causes are queued only by the close that stored the record.
    let record = BillingRecord {
        scope: BillingScope::Owner,
        account: "acme".into(),
        owner: "acme".into(),
        tier: "pro".into(),
        period_start: T0,
        period_end: end,
        currency: "EUR".into(),
        units: 5,
        included: 3,
        overage_units: 2,
        base_fee: 1_000,
        overage_amount: 2,
        amount: 1_002,
        closed_at: end,
    };
    let mut notice = job("closed-acme");
    notice.kind = "notify".into();
    let batch = vec![(record.clone(), vec![notice])];
    let (x, y) = tokio::join!(a.close_billing(&batch, end), b.close_billing(&batch, end));
    assert_eq!(x.unwrap() + y.unwrap(), 1);
    assert_eq!(a.close_billing(&batch, end + 1).await.unwrap(), 0);
    assert!(
        a.billing_closed(BillingScope::Owner, "pro", T0)
            .await
            .unwrap()
    );
    let stored = a
        .billing_records(&BillingFilter {
            owner: Some("acme".into()),
            ..BillingFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(stored, vec![record]);
    let queued = a
        .jobs(&JobFilter {
            kind: Some("notify".into()),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
}

async fn alerts(reg: &Registry) {
    let fire = AlertChange {
        rule: "denials".into(),
        subject: "key:key_1".into(),
        event: AlertEventKind::Fired,
        severity: "warning".into(),
        value: 120.0,
        summary: "key_1 was denied 120 times in a minute".into(),
        at: T0,
    };
    let deliveries = |e: &tollgate_registry::AlertEvent| {
        let mut j = job(&format!("alert-{}", e.id));
        j.kind = "alert".into();
        vec![j]
    };
    let fired = reg.change_alert(&fire, deliveries).await.unwrap().unwrap();
    // Firing again while it fires records nothing and sends nothing.
    assert!(reg.change_alert(&fire, deliveries).await.unwrap().is_none());
    let firing = reg.firing_alerts(None).await.unwrap();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].since, T0);
    let mut resolve = fire.clone();
    resolve.event = AlertEventKind::Resolved;
    resolve.at = T0 + 60_000;
    resolve.value = 3.0;
    let resolved = reg
        .change_alert(&resolve, deliveries)
        .await
        .unwrap()
        .unwrap();
    assert!(
        reg.change_alert(&resolve, deliveries)
            .await
            .unwrap()
            .is_none()
    );
    assert!(reg.firing_alerts(None).await.unwrap().is_empty());
    // A resolve with nothing firing records nothing.
    let mut other = resolve.clone();
    other.subject = "key:key_2".into();
    assert!(
        reg.change_alert(&other, deliveries)
            .await
            .unwrap()
            .is_none()
    );
    let history = reg.alert_history(&AlertFilter::default()).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![resolved.id, fired.id]
    );
    let sent = reg
        .jobs(&JobFilter {
            kind: Some("alert".into()),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(sent.len(), 2);

    // Denials counted per key and per rule.
    reg.write_usage(
        &[],
        &[
            tollgate_registry::Violation {
                at: T0,
                key_id: Some("key_9".into()),
                rule: "per-user".into(),
                code: "RATE_LIMITED".into(),
                subject: serde_json::json!({}),
            },
            tollgate_registry::Violation {
                at: T0 + 1,
                key_id: None,
                rule: "per-user".into(),
                code: "RATE_LIMITED".into(),
                subject: serde_json::json!({}),
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        reg.denial_counts(false, T0, T0 + 60_000, 10).await.unwrap(),
        vec![("key_9".to_string(), 1)]
    );
    assert_eq!(
        reg.denial_counts(true, T0, T0 + 60_000, 10).await.unwrap(),
        vec![("per-user".to_string(), 2)]
    );
    reg.ping().await.unwrap();
}

async fn owners(reg: &Registry) {
    let contact = OwnerContact {
        name: "Acme Inc".into(),
        email: Some("billing@acme.test".into()),
        webhook_url: Some("http://127.0.0.1:9/hook".into()),
        webhook_secret: Some("whsec_c2VjcmV0".into()),
        metadata: serde_json::json!({"plan": "annual"}),
    };
    assert!(reg.put_owner("acme", &contact, T0).await.unwrap());
    assert!(!reg.put_owner("acme", &contact, T0 + 1).await.unwrap());
    let shown = reg.owner("acme").await.unwrap().unwrap();
    assert!(shown.webhook_signed);
    assert_eq!((shown.created_at, shown.updated_at), (T0, T0 + 1));
    let text = serde_json::to_string(&shown).unwrap();
    assert!(!text.contains("whsec_"), "the secret is never shown");
    assert_eq!(reg.owner_contact("acme").await.unwrap().unwrap(), contact);
    assert_eq!(reg.owners(None, 10).await.unwrap().len(), 1);
    assert!(reg.delete_owner("acme").await.unwrap());
    assert!(reg.owner("acme").await.unwrap().is_none());
}

async fn slo(a: &Registry, b: &Registry) {
    let m = |minute: i64, good: u64, total: u64| tollgate_registry::SloMinute {
        minute: T0 + minute * 60_000,
        good,
        total,
    };
    a.put_slo_minutes("up", "one", &[m(0, 5, 6), m(1, 1, 1)])
        .await
        .unwrap();
    // A minute written again replaces what that instance wrote; another instance adds.
    a.put_slo_minutes("up", "one", &[m(1, 3, 4)]).await.unwrap();
    b.put_slo_minutes("up", "two", &[m(1, 10, 10)])
        .await
        .unwrap();
    b.put_slo_minutes("other", "two", &[m(1, 0, 99)])
        .await
        .unwrap();
    assert_eq!(a.slo_sums("up", T0, T0 + 120_000).await.unwrap(), (18, 20));
    assert_eq!(
        b.slo_sums("up", T0 + 60_000, T0 + 120_000).await.unwrap(),
        (13, 14)
    );
    assert_eq!(a.slo_sums("none", T0, T0 + 120_000).await.unwrap(), (0, 0));
    // Several windows in one read, each from its own start to the same end.
    assert_eq!(
        b.slo_sums_since("up", &[T0, T0 + 60_000, T0 + 120_000], T0 + 120_000)
            .await
            .unwrap(),
        [(18, 20), (13, 14), (0, 0)]
    );
    assert_eq!(
        a.slo_sums_since("none", &[T0], T0 + 120_000).await.unwrap(),
        [(0, 0)]
    );
    assert!(a.slo_sums_since("up", &[], T0).await.unwrap().is_empty());
    assert_eq!(a.prune_slo(T0 + 60_000).await.unwrap(), 1);
    assert_eq!(a.slo_sums("up", T0, T0 + 120_000).await.unwrap(), (13, 14));
}

async fn dead_letters(a: &Registry, b: &Registry) {
    let letter = |route: &str, n: u8| NewDeadLetter {
        at: T0 + i64::from(n),
        route: route.into(),
        upstream: "api".into(),
        method: "POST".into(),
        url: format!("http://api.example/{n}"),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-trace".into(), "a".into()),
            ("x-trace".into(), "b".into()),
        ],
        body: vec![0, 159, 146, n],
        body_truncated: n == 3,
        tries: 3,
        last_failure: "the upstream answered 503 Service Unavailable".into(),
    };
    a.put_dead_letters(&[letter("/v1", 1), letter("/v2", 2)])
        .await
        .unwrap();
    b.put_dead_letters(&[letter("/v1", 3)]).await.unwrap();
    // Newest first, by route, a page at a time.
    let all = a.dead_letters(&DeadLetterFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.url.as_str()).collect::<Vec<_>>(),
        [
            "http://api.example/3",
            "http://api.example/2",
            "http://api.example/1"
        ]
    );
    let v1 = DeadLetterFilter {
        route: Some("/v1".into()),
        limit: Some(1),
        ..DeadLetterFilter::default()
    };
    let page = b.dead_letters(&v1).await.unwrap();
    assert_eq!((page.len(), page[0].body_truncated), (1, true));
    let next = DeadLetterFilter {
        before: Some(page[0].id),
        ..v1
    };
    let page2 = b.dead_letters(&next).await.unwrap();
    assert_eq!(page2.len(), 1);
    assert_eq!(page2[0].url, "http://api.example/1");
    assert_eq!((page2[0].body_size, page2[0].tries), (4, 3));
    // One whole: headers in order, repeated ones too, and the body's bytes as they were.
    let one = a.dead_letter(page2[0].id).await.unwrap().unwrap();
    assert_eq!(one.headers, letter("/v1", 1).headers);
    assert_eq!(one.body, vec![0, 159, 146, 1]);
    assert!(!one.summary.body_truncated);
    // A replay claims it first; while it holds the claim, no other replay may, from
    // either registry, until the claim goes stale.
    let id = one.summary.id;
    let stale = 60_000;
    let DeadLetterClaim::Claimed(claim) = a
        .claim_dead_letter_replay(id, T0 + 5, T0 + 5 - stale)
        .await
        .unwrap()
    else {
        panic!("the first claim was refused");
    };
    assert_eq!(claim, ReplayClaim { id, since: T0 + 5 });
    assert_eq!(
        b.claim_dead_letter_replay(id, T0 + 6, T0 + 6 - stale)
            .await
            .unwrap(),
        DeadLetterClaim::Replaying { since: T0 + 5 }
    );
    assert_eq!(
        b.dead_letter(id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .replaying_since,
        Some(T0 + 5)
    );
    // Released (nothing was sent), it may be claimed again; a stale claim is taken over,
    // and the one it was taken from can no longer release it.
    assert!(a.release_dead_letter_replay(&claim).await.unwrap());
    assert!(!a.release_dead_letter_replay(&claim).await.unwrap());
    let DeadLetterClaim::Claimed(old) = b
        .claim_dead_letter_replay(id, T0 + 7, T0 + 7 - stale)
        .await
        .unwrap()
    else {
        panic!("a released dead letter could not be claimed");
    };
    let later = T0 + 7 + stale + 1;
    let DeadLetterClaim::Claimed(claim) = a
        .claim_dead_letter_replay(id, later, later - stale)
        .await
        .unwrap()
    else {
        panic!("a stale claim was not taken over");
    };
    assert!(!b.release_dead_letter_replay(&old).await.unwrap());
    assert_eq!(
        a.claim_dead_letter_replay(id + 1000, T0, T0).await.unwrap(),
        DeadLetterClaim::Missing
    );
    // Concurrent claims from both registries: exactly one wins.
    assert!(a.release_dead_letter_replay(&claim).await.unwrap());
    for round in 0..20 {
        let now = later + 10 + round;
        let (x, y) = tokio::join!(
            a.claim_dead_letter_replay(id, now, now - stale),
            b.claim_dead_letter_replay(id, now, now - stale)
        );
        let won: Vec<ReplayClaim> = [x.unwrap(), y.unwrap()]
            .into_iter()
            .filter_map(|c| match c {
                DeadLetterClaim::Claimed(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        assert!(a.release_dead_letter_replay(&won[0]).await.unwrap());
    }
    let DeadLetterClaim::Claimed(claim) = a
        .claim_dead_letter_replay(id, T0 + 8, T0 + 8 - stale)
        .await
        .unwrap()
    else {
        panic!("a released dead letter could not be claimed");
    };
    // A failed replay adds its tries and releases its claim; a delete removes it once.
    assert!(
        a.dead_letter_replay_failed(&claim, 2, "connection refused", T0 + 9)
            .await
            .unwrap()
    );
    let again = b
        .dead_letter(one.summary.id)
        .await
        .unwrap()
        .unwrap()
        .summary;
    assert_eq!(
        (again.tries, again.replays, again.replayed_at),
        (5, 1, Some(T0 + 9))
    );
    assert_eq!(again.last_failure, "connection refused");
    assert_eq!(again.replaying_since, None);
    assert!(a.delete_dead_letter(one.summary.id).await.unwrap());
    assert!(!b.delete_dead_letter(one.summary.id).await.unwrap());
    assert!(a.dead_letter(one.summary.id).await.unwrap().is_none());
    assert!(
        !a.dead_letter_replay_failed(&claim, 1, "x", T0)
            .await
            .unwrap()
    );
    assert_eq!(
        a.dead_letters(&DeadLetterFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A sign-out recorded by one instance is seen by the other, and forgotten once its
/// session has expired.
async fn signed_out_sessions(a: &Registry, b: &Registry) {
    assert!(!b.session_signed_out("s-1").await.unwrap());
    a.sign_out_session("s-1", 2_000, 1_000).await.unwrap();
    a.sign_out_session("s-1", 2_000, 1_000).await.unwrap();
    assert!(b.session_signed_out("s-1").await.unwrap());
    assert!(!b.session_signed_out("s-2").await.unwrap());
    b.sign_out_session("s-2", 9_000, 2_000).await.unwrap();
    assert!(
        !a.session_signed_out("s-1").await.unwrap(),
        "an expired session's sign-out is dropped"
    );
    assert!(a.session_signed_out("s-2").await.unwrap());
}

async fn suite(a: &Registry, b: &Registry) {
    signed_out_sessions(a, b).await;
    dead_letters(a, b).await;
    jobs(a).await;
    race(a, b).await;
    leases(a, b).await;
    billing(a, b).await;
    alerts(a).await;
    owners(a).await;
    slo(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let a = Registry::open(&url, secret()).await.unwrap();
    let b = Registry::open(&url, secret()).await.unwrap();
    suite(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres() {
    let pg = Postgres::start().unwrap();
    let a = Registry::open(&pg.url(), secret()).await.unwrap();
    let b = Registry::open(&pg.url(), secret()).await.unwrap();
    suite(&a, &b).await;
}
