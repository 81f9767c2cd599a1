//! Usage, violations, retention and the audit log, run on SQLite and on a real PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use tollgate_registry::{
    AuditEntry, AuditFilter, Granularity, KeySecret, Registry, Retention, UsageBucket, UsageEvent,
    Violation, ViolationFilter,
};
use tollgate_testkit::Postgres;

/// 2027-01-15T10:00:00Z: on a day, hour and minute boundary.
const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000 + 10 * 3_600_000;

fn secret() -> KeySecret {
    KeySecret::new(b"a server secret of at least 32 bytes!".to_vec()).unwrap()
}

fn event(key: &str, at: i64, allowed: bool, cost: i64) -> UsageEvent {
    UsageEvent {
        at,
        key_id: key.into(),
        owner: "acme".into(),
        tier: "pro".into(),
        allowed,
        code: if allowed { "OK" } else { "RATE_LIMITED" }.into(),
        cost,
    }
}

fn bucket(start: i64, requests: i64, allowed: i64, units: i64) -> UsageBucket {
    UsageBucket {
        start,
        requests,
        allowed,
        denied: requests - allowed,
        units,
    }
}

async fn suite(reg: &Registry) {
    // Two batches over three minutes of one hour, and another key.
    let first = [
        event("key_a", T0, true, 1),
        event("key_a", T0 + 59_999, true, 3),
        event("key_a", T0 + 60_000, false, 1),
        event("key_b", T0, true, 1),
    ];
    let denied = Violation {
        at: T0 + 60_000,
        key_id: Some("key_a".into()),
        rule: "requests".into(),
        code: "RATE_LIMITED".into(),
        subject: serde_json::json!({"ip": "192.0.2.1", "path": "/orders"}),
    };
    reg.write_usage(&first, std::slice::from_ref(&denied))
        .await
        .unwrap();
    let second = [
        event("key_a", T0 + 60_001, true, 2),
        event("key_a", T0 + 180_000, true, 1),
    ];
    reg.write_usage(&second, &[]).await.unwrap();
    assert_eq!(reg.count_usage_events(None).await.unwrap(), 6);
    assert_eq!(reg.count_usage_events(Some("key_a")).await.unwrap(), 5);

    // Rollups add up across batches.
    let minutes = reg
        .usage_history("key_a", Granularity::Minute, T0, T0 + 3_600_000)
        .await
        .unwrap();
    assert_eq!(
        minutes,
        [
            bucket(T0, 2, 2, 4),
            bucket(T0 + 60_000, 2, 1, 2),
            bucket(T0 + 180_000, 1, 1, 1)
        ]
    );
    let hours = reg
        .usage_history("key_a", Granularity::Hour, T0 - 1, T0 + 3_600_000)
        .await
        .unwrap();
    assert_eq!(hours, [bucket(T0, 5, 4, 7)]);
    let days = reg
        .usage_history("key_a", Granularity::Day, T0, T0 + 1)
        .await
        .unwrap();
    assert_eq!(days, [bucket(T0 - 10 * 3_600_000, 5, 4, 7)]);
    // A range past the data is empty; `to` is exclusive.
    assert!(
        reg.usage_history("key_a", Granularity::Minute, T0 + 240_000, T0 + 300_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reg.usage_history("key_a", Granularity::Minute, T0, T0 + 60_000)
            .await
            .unwrap()
            .len(),
        1
    );

    // Violations by key and time.
    let mut more = Vec::new();
    for i in 0..5 {
        more.push(Violation {
            at: T0 + 120_000 + i,
            key_id: None,
            rule: "per-ip".into(),
            code: "RATE_LIMITED".into(),
            subject: serde_json::json!({"ip": "198.51.100.7"}),
        });
    }
    reg.write_usage(&[], &more).await.unwrap();
    let mine = reg
        .violations(&ViolationFilter {
            key_id: Some("key_a".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].violation, denied);
    let page = reg
        .violations(&ViolationFilter {
            from: Some(T0 + 120_000),
            limit: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 3);
    let rest = reg
        .violations(&ViolationFilter {
            from: Some(T0 + 120_000),
            after: Some(page[2].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    let before = reg
        .violations(&ViolationFilter {
            to: Some(T0 + 120_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(before.len(), 1);

    // The audit log.
    for (i, action) in ["POST /v1/keys", "DELETE /v1/keys/{id}"].iter().enumerate() {
        reg.audit(&AuditEntry {
            at: T0 + i as i64,
            actor: if i == 0 { "ops" } else { "alice" }.into(),
            role: "admin".into(),
            action: (*action).into(),
            target: "/v1/keys".into(),
            source: "127.0.0.1".into(),
            status: 201,
        })
        .await
        .unwrap();
    }
    let alice = reg
        .audit_log(&AuditFilter {
            actor: Some("alice".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].entry.action, "DELETE /v1/keys/{id}");

    // An owner's keys together, and when each was last used.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let new = tollgate_registry::NewKey {
            env: "test".into(),
            name: "k".into(),
            owner: "globex".into(),
            tier: "pro".into(),
            ..Default::default()
        };
        ids.push(reg.create_key(&new, T0).await.unwrap().0.id);
    }
    let billed = [
        event(&ids[0], T0 + 1_000, true, 10),
        event(&ids[1], T0 + 2_000, true, 5),
        event(&ids[1], T0 + 3_600_000, false, 1),
    ];
    reg.write_usage(&billed, &[]).await.unwrap();
    let hourly = reg
        .owner_usage_history("globex", Granularity::Hour, T0, T0 + 2 * 3_600_000)
        .await
        .unwrap();
    assert_eq!(
        hourly,
        [bucket(T0, 2, 2, 15), bucket(T0 + 3_600_000, 1, 0, 0)]
    );
    let k1 = reg.get_key(&ids[1]).await.unwrap().unwrap();
    assert_eq!(k1.last_used_at, Some(T0 + 3_600_000));
    // An older batch does not move it back.
    reg.write_usage(&[event(&ids[1], T0, true, 1)], &[])
        .await
        .unwrap();
    let k1 = reg.get_key(&ids[1]).await.unwrap().unwrap();
    assert_eq!(k1.last_used_at, Some(T0 + 3_600_000));
    assert_eq!(
        reg.get_key(&ids[0]).await.unwrap().unwrap().last_used_at,
        Some(T0 + 1_000)
    );

    // Retention: a day later, with events kept 1 h and minute rollups 1 h, only those go.
    let retention = Retention {
        events: Some(Duration::from_secs(3_600)),
        minute: Some(Duration::from_secs(3_600)),
        hour: Some(Duration::from_secs(7 * 86_400)),
        day: None,
        violations: Some(Duration::from_secs(30 * 86_400)),
        audit: None,
        billing: None,
        jobs: None,
        dead_letters: Some(Duration::from_secs(3_600)),
    };
    let letter = tollgate_registry::NewDeadLetter {
        at: T0,
        route: "/".into(),
        upstream: "api".into(),
        method: "GET".into(),
        url: "http://api.example/".into(),
        headers: Vec::new(),
        body: Vec::new(),
        body_truncated: false,
        tries: 1,
        last_failure: "connection refused".into(),
    };
    let fresh = tollgate_registry::NewDeadLetter {
        at: T0 + 86_400_000,
        ..letter.clone()
    };
    reg.put_dead_letters(&[letter, fresh]).await.unwrap();
    let pruned = reg.prune(&retention, T0 + 86_400_000).await.unwrap();
    assert_eq!(pruned.dead_letters, 1);
    assert_eq!(
        (pruned.events, pruned.rollups, pruned.violations),
        (10, 7, 0)
    );
    assert_eq!(reg.count_usage_events(None).await.unwrap(), 0);
    assert!(
        reg.usage_history("key_a", Granularity::Minute, T0, T0 + 3_600_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reg.usage_history("key_a", Granularity::Hour, T0, T0 + 3_600_000)
            .await
            .unwrap(),
        hours
    );
    // Forty days on, violations go too; the audit log is kept.
    let pruned = reg.prune(&retention, T0 + 40 * 86_400_000).await.unwrap();
    assert_eq!((pruned.violations, pruned.audit), (6, 0));
    assert_eq!(
        reg.audit_log(&AuditFilter::default()).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn usage_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    suite(&Registry::open(&url, secret()).await.unwrap()).await;
}

#[tokio::test]
async fn usage_on_postgres() {
    let pg = Postgres::start().unwrap();
    suite(&Registry::open(&pg.url(), secret()).await.unwrap()).await;
}
