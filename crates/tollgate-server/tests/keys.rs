//! The `/v1/keys` admin routes on the real binary, with the records in a SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::Server;
use serde_json::{Value, json};

const SECRET: &str = "a server secret of at least 32 bytes!!";

#[tokio::test]
async fn keys_are_created_listed_changed_rotated_verified_and_revoked() {
    let server = Server::start_with_env(
        "database: {}\n",
        &[
            ("TOLLGATE_KEY_SECRET", SECRET),
            ("TOLLGATE_ADMIN_TOKEN", "admin-token"),
        ],
    );
    let c = reqwest::Client::new();
    let url = |p: &str| server.url(p);
    let auth = "Bearer admin-token";

    // Admin routes need the admin token.
    let r = c.get(url("/v1/keys")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .post(url("/v1/keys"))
        .header("authorization", auth)
        .json(&json!({"name": "ci", "owner": "acme", "tier": "pro", "metadata": {"team": "a"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tg_live_"), "{created}");
    assert_eq!(created["key"]["prefix"], &secret[..12]);
    assert!(created["key"].get("hash").is_none());

    // The secret is never shown again.
    let one: Value = c
        .get(url(&format!("/v1/keys/{id}")))
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["status"], "active");
    assert!(!one.to_string().contains(&secret));
    let page: Value = c
        .get(url("/v1/keys?owner=acme"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["keys"].as_array().unwrap().len(), 1);

    let verify = |key: String| {
        let c = c.clone();
        let url = url("/v1/keys/verify");
        async move {
            c.post(url)
                .header("authorization", auth)
                .json(&json!({ "key": key }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(verify(secret.clone()).await["valid"], true);
    assert_eq!(
        verify("tg_live_nonsense".into()).await["code"],
        "KEY_INVALID"
    );

    let r: Value = c
        .patch(url(&format!("/v1/keys/{id}")))
        .header("authorization", auth)
        .json(&json!({"enabled": false, "tier": "enterprise"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["status"].as_str(), r["tier"].as_str()),
        (Some("disabled"), Some("enterprise"))
    );
    assert_eq!(verify(secret.clone()).await["code"], "KEY_DISABLED");
    c.patch(url(&format!("/v1/keys/{id}")))
        .header("authorization", auth)
        .json(&json!({"enabled": true, "expires_at": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(verify(secret.clone()).await["code"], "KEY_EXPIRED");
    let cleared: Value = c
        .patch(url(&format!("/v1/keys/{id}")))
        .header("authorization", auth)
        .json(&json!({"expires_at": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["expires_at"], Value::Null);

    // Rotation with a grace period: both secrets work meanwhile.
    let rotated: Value = c
        .post(url(&format!("/v1/keys/{id}/rotate")))
        .header("authorization", auth)
        .json(&json!({"grace_seconds": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(verify(new_secret.clone()).await["valid"], true);
    assert_eq!(verify(secret.clone()).await["valid"], true);

    // Revocation ends both.
    let r = c
        .delete(url(&format!("/v1/keys/{id}")))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(verify(new_secret).await["code"], "KEY_INVALID");
    assert_eq!(verify(secret).await["code"], "KEY_INVALID");
    let r = c
        .delete(url(&format!("/v1/keys/{id}")))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Bad input: a problem with a reason.
    let r = c
        .post(url("/v1/keys"))
        .header("authorization", auth)
        .json(&json!({"name": "x", "owner": "", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c
        .post(url("/v1/keys"))
        .header("authorization", auth)
        .json(&json!({"name": "x", "owner": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // The records are in a file beside the configuration.
    assert!(server.dir.path().join("tollgate.db").exists());
}

#[tokio::test]
async fn without_a_database_the_key_routes_say_so() {
    let server = Server::start("rules: []\n");
    let r = reqwest::get(server.url("/v1/keys")).await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert!(v["type"].as_str().unwrap().ends_with("keys-off"), "{v}");
}

#[test]
fn a_database_without_a_key_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("t.yaml");
    std::fs::write(&cfg, "database: { url: \"sqlite://x.db\" }\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&cfg)
        .env_remove("TOLLGATE_KEY_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOLLGATE_KEY_SECRET"));
}
