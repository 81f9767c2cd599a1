//! The `/v1/keys` admin routes on the real binary, with the records in a SQLite file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::Server;
use serde_json::{Value, json};

/// Tiers for keys to be on: a key's tier must exist.
const TIERS: &str =
    "tiers:\n  free: { limits: [] }\n  pro: { limits: [] }\n  enterprise: { limits: [] }\n";

const SECRET: &str = "a server secret of at least 32 bytes!!";

#[tokio::test]
async fn keys_are_created_listed_changed_rotated_verified_and_revoked_on_sqlite() {
    lifecycle("database: {}\n").await;
}

#[tokio::test]
async fn keys_are_created_listed_changed_rotated_verified_and_revoked_on_postgres() {
    let pg = tollgate_testkit::Postgres::start().unwrap();
    lifecycle(&format!("database: {{ url: \"{}\" }}\n", pg.url())).await;
}

async fn lifecycle(database: &str) {
    let sqlite = database == "database: {}\n";
    let server = Server::start_with_env(
        &format!("{database}{TIERS}"),
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
    assert_eq!(verify(new_secret.clone()).await["code"], "KEY_INVALID");
    assert_eq!(verify(secret.clone()).await["code"], "KEY_INVALID");
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
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains("colour"), "{v}");
    // A field of the wrong type is named.
    let r = c
        .post(url("/v1/keys"))
        .header("authorization", auth)
        .json(&json!({"name": "x", "owner": "o", "expires_at": "tomorrow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["path"], "expires_at", "{v}");
    let r = c
        .post(url("/v1/keys"))
        .header("authorization", auth)
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "not JSON");
    let r = c
        .post(url("/v1/keys"))
        .header("authorization", auth)
        .json(&json!({"name": "x", "owner": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // The records are in a file beside the configuration, by default.
    assert_eq!(server.dir.path().join("tollgate.db").exists(), sqlite);
    // No key material in any log line.
    let log = server.log_text();
    for s in [&secret, &new_secret] {
        assert!(
            !log.contains(s.as_str()) && !log.contains(&s[12..]),
            "a key was logged"
        );
    }
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

#[tokio::test]
async fn decisions_verify_presented_keys_and_count_by_key_id() {
    let server = Server::start_with_env(
        &("database: {}\nrules:\n  - { name: per-key, key: \"k:{key}\", match: { key: \"*\" }, algorithm: fixed_window, anchor: first_hit, limit: 2, period: 1h }\n  - { name: pro, key: \"t:{key}\", match: { attr.tier: pro }, algorithm: fixed_window, anchor: first_hit, limit: 100, period: 1h }\n".to_owned() + TIERS),
        &[("TOLLGATE_KEY_SECRET", SECRET)],
    );
    let c = reqwest::Client::new();
    let created: Value = c
        .post(server.url("/v1/keys"))
        .json(&json!({"name": "app", "owner": "acme", "tier": "pro"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let check = |key: &str| {
        let c = c.clone();
        let url = server.url("/v1/check");
        let body = json!({"subject": {"api_key": key}});
        async move {
            c.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    // A valid key: counted by its id, and its tier's rule applies.
    let v = check(&secret).await;
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["limits"][0]["key"], format!("k:{id}"), "{v}");
    assert_eq!(v["limits"][1]["name"], "pro", "{v}");
    assert_eq!(check(&secret).await["allowed"], true);
    assert_eq!(check(&secret).await["code"], "RATE_LIMITED");

    // Made-up and mistyped keys are refused, not counted.
    let v = check("tg_live_0000000000000000000000000000").await;
    assert_eq!(
        (v["allowed"].as_bool(), v["code"].as_str()),
        (Some(false), Some("KEY_INVALID")),
        "{v}"
    );
    assert_eq!(
        check(&tollgate_registry::key::generate("live").unwrap()).await["code"],
        "KEY_INVALID"
    );

    // Forward-auth: 401 for an invalid key, 403 for a disabled one; a change made here
    // takes effect at once, cache or not.
    let auth = |key: String| {
        let c = c.clone();
        let url = server.url("/v1/authorize");
        async move {
            c.get(url)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(auth("tg_live_nope".into()).await, 401);
    c.patch(server.url(&format!("/v1/keys/{id}")))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(auth(secret.clone()).await, 403);
    assert_eq!(check(&secret).await["code"], "KEY_DISABLED");
    c.delete(server.url(&format!("/v1/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(auth(secret.clone()).await, 401);
    assert_eq!(check(&secret).await["code"], "KEY_INVALID");
}

#[tokio::test]
async fn a_revocation_reaches_another_instance_within_cache_ttl() {
    let pg = tollgate_testkit::Postgres::start().unwrap();
    let database = format!(
        "database: {{ url: \"{}\", cache_ttl: 300ms }}\nrules:\n  - {{ name: per-key, key: \"k:{{key}}\", match: {{ key: \"*\" }}, limit: 1000, period: 1s }}\n{TIERS}",
        pg.url()
    );
    let a = Server::start_with_env(&database, &[("TOLLGATE_KEY_SECRET", SECRET)]);
    let b = Server::start_with_env(&database, &[("TOLLGATE_KEY_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let created: Value = c
        .post(a.url("/v1/keys"))
        .json(&json!({"name": "app", "owner": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let code = |server: &Server| {
        let c = c.clone();
        let url = server.url("/v1/check");
        let body = json!({"subject": {"api_key": secret}});
        async move {
            let v: Value = c
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["code"].as_str().unwrap().to_owned()
        }
    };
    // Both instances know the key (and B caches it).
    assert_eq!(code(&a).await, "OK");
    assert_eq!(code(&b).await, "OK");
    let revoked_at = std::time::Instant::now();
    let r = c
        .delete(a.url(&format!("/v1/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // At once on the instance that revoked it…
    assert_eq!(code(&a).await, "KEY_INVALID");
    // …and on the other once its cached verification expires.
    let seen = common::eventually(std::time::Duration::from_secs(5), || async {
        code(&b).await == "KEY_INVALID"
    })
    .await;
    assert!(seen, "B still accepts a revoked key");
    let took = revoked_at.elapsed();
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
}

/// A flood of made-up keys that pass the checksum (each one costs a lookup) neither
/// evicts a key in use from the cache nor breaks the answers: shown by stopping the
/// database afterwards — the good key is still served from the cache.
#[tokio::test]
async fn a_flood_of_made_up_keys_does_not_evict_a_key_in_use() {
    let pg = tollgate_testkit::Postgres::start().unwrap();
    let database = format!(
        "database: {{ url: \"{}\", cache_ttl: 1h, cache_capacity: 500 }}\n{TIERS}",
        pg.url()
    );
    let server = Server::start_with_env(&database, &[("TOLLGATE_KEY_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let created: Value = c
        .post(server.url("/v1/keys"))
        .json(&json!({"name": "app", "owner": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let good = created["secret"].as_str().unwrap().to_owned();
    let check_url = server.url("/v1/check");
    let code = move |c: reqwest::Client, key: String| {
        let url = check_url.clone();
        async move {
            let r = c
                .post(url)
                .json(&json!({"subject": {"api_key": key}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    for _ in 0..50 {
        assert_eq!(code(c.clone(), good.clone()).await, "OK");
    }
    // 16 clients, 3,200 distinct made-up keys, the good key among them now and then.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, good, code) = (c.clone(), good.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let made_up = tollgate_registry::key::generate("live").unwrap();
                let got = code(c.clone(), made_up).await;
                assert!(got == "KEY_INVALID" || got == "UNAVAILABLE", "{got}");
                if i % 20 == 0 {
                    assert_eq!(code(c.clone(), good.clone()).await, "OK");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(server.alive().await);
    // Without the database, only what is cached can be answered.
    drop(pg);
    assert_eq!(code(c.clone(), good.clone()).await, "OK");
    let stranger = tollgate_registry::key::generate("live").unwrap();
    assert_eq!(code(c.clone(), stranger).await, "UNAVAILABLE");
}

#[tokio::test]
async fn dev_mode_generates_a_secret_once_and_keeps_it_beside_the_config() {
    use std::os::unix::fs::PermissionsExt;
    let mut first = Server::start_with_env(
        &format!("database: {{}}\n{TIERS}"),
        &[("TOLLGATE_DEV", "1")],
    );
    let c = reqwest::Client::new();
    let created: Value = c
        .post(first.url("/v1/keys"))
        .json(&json!({"name": "try", "owner": "me"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let file = first.dir.path().join(".tollgate-dev-secret");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert!(first.log_text().contains("dev mode"));
    // A restart reads the same secret: the key still verifies.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = Server::start_at_with_env(first.config.clone(), &[("TOLLGATE_DEV", "1")]);
    let v: Value = c
        .post(second.url("/v1/keys/verify"))
        .json(&json!({ "key": secret }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
    // The secret never reaches a log line.
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(!first.log_text().contains(kept.trim()) && !second.log_text().contains(kept.trim()));
}

#[tokio::test]
async fn a_key_made_in_dev_mode_on_the_embedded_default_is_limited_by_its_tier() {
    let server = Server::start_embedded_dev();
    let c = reqwest::Client::new();
    let created: Value = c
        .post(server.url("/v1/keys"))
        .json(&json!({"name": "try", "owner": "me"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["key"]["tier"], "free", "{created}");
    let key = created["secret"].as_str().unwrap();
    let mut seen = Vec::new();
    for _ in 0..6 {
        let v: Value = c
            .post(server.url("/v1/check"))
            .json(&json!({"subject": {"api_key": key}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.push((
            v["allowed"].as_bool().unwrap(),
            v["code"].as_str().unwrap().to_owned(),
            v["limits"][0]["remaining"].as_u64().unwrap(),
        ));
    }
    let want: Vec<(bool, String, u64)> = [4, 3, 2, 1, 0]
        .into_iter()
        .map(|r| (true, "OK".to_owned(), r))
        .chain([(false, "RATE_LIMITED".to_owned(), 0)])
        .collect();
    assert_eq!(seen, want, "the walkthrough of docs/keys.md");

    // A key on a tier the policy does not define is refused.
    let r = c
        .post(server.url("/v1/keys"))
        .json(&json!({"name": "x", "owner": "me", "tier": "gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["path"], "tier", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tiers: free, pro"),
        "{p}"
    );
}
