//! The key suite, run on SQLite (a temporary file) and on a real PostgreSQL server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

use tollgate_registry::{KeyFilter, KeyPatch, KeySecret, KeyStatus, NewKey, Registry, VerifyError};
use tollgate_testkit::Postgres;

const T0: i64 = 1_800_000_000_000;

fn secret() -> KeySecret {
    KeySecret::new(b"a server secret of at least 32 bytes!".to_vec()).unwrap()
}

fn new_key(owner: &str, tier: &str) -> NewKey {
    NewKey {
        env: "test".into(),
        name: format!("{owner} {tier}"),
        owner: owner.into(),
        tier: tier.into(),
        expires_at: None,
        metadata: serde_json::json!({"team": "billing"}),
        overrides: serde_json::json!({"requests": {"limit": 500}}),
    }
}

async fn suite(reg: &Registry) {
    // Created once, shown once; stored only as a hash with a display prefix.
    let (rec, secret) = reg.create_key(&new_key("acme", "pro"), T0).await.unwrap();
    assert!(secret.starts_with("tg_test_"));
    assert_eq!(rec.prefix, secret[..12]);
    assert_eq!(rec.status, KeyStatus::Active);
    assert_eq!(rec.metadata["team"], "billing");
    assert_eq!(rec.overrides["requests"]["limit"], 500);
    assert_eq!(reg.verify(&secret, T0).await.unwrap().id, rec.id);

    // A typo is refused before any lookup; a well-formed stranger is unknown.
    let mut typo = secret.clone().into_bytes();
    typo[10] = if typo[10] == b'x' { b'y' } else { b'x' };
    assert_eq!(
        reg.verify(&String::from_utf8(typo).unwrap(), T0).await,
        Err(VerifyError::Invalid)
    );
    let stranger = tollgate_registry::key::generate("test").unwrap();
    assert_eq!(reg.verify(&stranger, T0).await, Err(VerifyError::Invalid));

    // Disabled, enabled, expired.
    let off = KeyPatch {
        enabled: Some(false),
        ..Default::default()
    };
    assert_eq!(
        reg.update_key(&rec.id, &off, T0 + 1)
            .await
            .unwrap()
            .unwrap()
            .status,
        KeyStatus::Disabled
    );
    assert_eq!(
        reg.verify(&secret, T0 + 2).await,
        Err(VerifyError::Disabled)
    );
    let on = KeyPatch {
        enabled: Some(true),
        expires_at: Some(Some(T0 + 100)),
        name: Some("renamed".into()),
        overrides: Some(serde_json::json!({})),
        ..Default::default()
    };
    let updated = reg.update_key(&rec.id, &on, T0 + 3).await.unwrap().unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.updated_at),
        ("renamed", T0 + 3)
    );
    assert_eq!(updated.overrides, serde_json::json!({}));
    assert!(reg.verify(&secret, T0 + 99).await.is_ok());
    assert_eq!(
        reg.verify(&secret, T0 + 100).await,
        Err(VerifyError::Expired)
    );
    let forever = KeyPatch {
        expires_at: Some(None),
        ..Default::default()
    };
    assert_eq!(
        reg.update_key(&rec.id, &forever, T0 + 4)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        None
    );

    // Rotation: the old secret works through the grace period, then not.
    let (rotated, new_secret) = reg
        .rotate_key(&rec.id, "test", 1_000, T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated.prefix, new_secret[..12]);
    assert!(reg.verify(&new_secret, T0 + 11).await.is_ok());
    assert!(reg.verify(&secret, T0 + 1_009).await.is_ok());
    assert_eq!(
        reg.verify(&secret, T0 + 1_010).await,
        Err(VerifyError::Invalid)
    );

    // Listing: filters and pages.
    for i in 0..5 {
        reg.create_key(
            &new_key(
                &format!("owner{i}"),
                if i % 2 == 0 { "free" } else { "pro" },
            ),
            T0,
        )
        .await
        .unwrap();
    }
    let free = reg
        .list_keys(&KeyFilter {
            tier: Some("free".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(free.len(), 3);
    let acme = reg
        .list_keys(&KeyFilter {
            owner: Some("acme".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(acme.len(), 1);
    let first = reg
        .list_keys(&KeyFilter {
            limit: Some(4),
            ..Default::default()
        })
        .await
        .unwrap();
    let rest = reg
        .list_keys(&KeyFilter {
            after: Some(first[3].id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((first.len(), rest.len()), (4, 2));
    assert!(rest.iter().all(|r| first.iter().all(|f| f.id < r.id)));

    // Revocation: for good, old and new secret alike, and a revoked key cannot change.
    assert!(reg.revoke_key(&rec.id, T0 + 20).await.unwrap());
    assert!(!reg.revoke_key(&rec.id, T0 + 21).await.unwrap());
    assert_eq!(
        reg.verify(&new_secret, T0 + 22).await,
        Err(VerifyError::Invalid)
    );
    assert!(
        reg.update_key(&rec.id, &on, T0 + 23)
            .await
            .unwrap()
            .is_none()
    );
    let revoked = reg
        .list_keys(&KeyFilter {
            status: Some(KeyStatus::Revoked),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    let active = reg
        .list_keys(&KeyFilter {
            status: Some(KeyStatus::Active),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 5);

    // Bad input is refused with a reason.
    let bad = NewKey {
        owner: String::new(),
        ..new_key("x", "free")
    };
    assert!(reg.create_key(&bad, T0).await.is_err());
    let bad = NewKey {
        metadata: serde_json::json!([1]),
        ..new_key("x", "free")
    };
    assert!(reg.create_key(&bad, T0).await.is_err());
    let bad = NewKey {
        overrides: serde_json::json!("fast"),
        ..new_key("x", "free")
    };
    assert!(reg.create_key(&bad, T0).await.is_err());
}

#[tokio::test]
async fn keys_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    let reg = Registry::open(&url, secret()).await.unwrap();
    assert_eq!(reg.backend(), "sqlite");
    suite(&reg).await;
    // Reopening migrates nothing twice and keeps the records.
    drop(reg);
    let again = Registry::open(&url, secret()).await.unwrap();
    assert_eq!(
        again.list_keys(&KeyFilter::default()).await.unwrap().len(),
        6
    );
}

#[tokio::test]
async fn keys_on_postgres() {
    let pg = Postgres::start().unwrap();
    let reg = Registry::open(&pg.url(), secret()).await.unwrap();
    assert_eq!(reg.backend(), "postgres");
    suite(&reg).await;
}
