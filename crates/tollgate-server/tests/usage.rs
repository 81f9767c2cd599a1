//! Tiers, overrides, identities, usage, violations and the shutdown flush, on the real
//! binary with its records in SQLite and in a real PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Server, eventually};
use serde_json::{Value, json};
use tollgate_testkit::Postgres;

const SECRET: &str = "a server secret of at least 32 bytes!!";

/// Windows anchored at the first hit and an hour long: no boundary falls inside a test.
const TIERS: &str = r#"
rules:
  - { name: per-ip, key: "ip:{ip}", algorithm: fixed_window, anchor: first_hit, limit: 1000, period: 1h }
tiers:
  free:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 5, period: 1h }
      - { name: team, algorithm: fixed_window, anchor: first_hit, limit: 8, period: 1h, per: owner }
  pro:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 100, period: 1h }
      - { name: monthly, algorithm: quota, limit: 1000, period: month }
"#;

struct Api {
    c: reqwest::Client,
    base: String,
}

impl Api {
    fn new(server: &Server) -> Self {
        Api {
            c: reqwest::Client::new(),
            base: server.url(""),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.c.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// Creates a key; its id and secret.
    async fn key(&self, owner: &str, tier: &str, overrides: Value) -> (String, String) {
        let (status, v) = self
            .post(
                "/v1/keys",
                json!({"name": "k", "owner": owner, "tier": tier, "overrides": overrides}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        (
            v["key"]["id"].as_str().unwrap().into(),
            v["secret"].as_str().unwrap().into(),
        )
    }

    async fn check(&self, secret: &str) -> Value {
        let (status, v) = self
            .post(
                "/v1/check",
                json!({"subject": {"api_key": secret, "ip": "192.0.2.7", "path": "/orders"}}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

/// A field summed over the buckets of a history answer.
fn total(history: &Value, field: &str) -> i64 {
    history["buckets"].as_array().map_or(0, |b| {
        b.iter().map(|x| x[field].as_i64().unwrap_or(0)).sum()
    })
}

fn denied_by(v: &Value) -> Option<&str> {
    v["limits"]
        .as_array()?
        .iter()
        .find(|l| l["exceeded"] == true)
        .and_then(|l| l["name"].as_str())
}

async fn suite(database: &str) {
    let server = Server::start_with_env(
        &format!("database: {{ {database}, flush_interval: 50ms }}\n{TIERS}"),
        &[("TOLLGATE_KEY_SECRET", SECRET)],
    );
    let api = Api::new(&server);

    // Keys must name a tier that exists, with overrides that compile over it.
    let (status, v) = api
        .post(
            "/v1/keys",
            json!({"name": "x", "owner": "o", "tier": "gold"}),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["path"], "tier", "{v}");
    let (status, v) = api
        .post(
            "/v1/keys",
            json!({"name": "x", "owner": "o", "tier": "free", "overrides": {"requests": {"limit": 0}}}),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["path"], "overrides.requests.limit", "{v}");
    let (status, v) = api
        .post(
            "/v1/keys",
            json!({"name": "x", "owner": "o", "tier": "free", "overrides": {"per-ip": {"limit": 5, "period": "1s"}}}),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["path"], "overrides.per-ip", "{v}");

    // Two keys of one owner: each its own `requests`, one shared `team`.
    let (a, a_secret) = api.key("acme", "free", Value::Null).await;
    let (_b, b_secret) = api.key("acme", "free", Value::Null).await;
    for i in 0..5 {
        let v = api.check(&a_secret).await;
        assert_eq!(v["allowed"], true, "request {i}: {v}");
    }
    let v = api.check(&a_secret).await;
    assert_eq!(
        (v["code"].as_str(), denied_by(&v)),
        (Some("RATE_LIMITED"), Some("requests")),
        "{v}"
    );
    assert_eq!(
        v["headers"]["ratelimit-policy"]
            .as_str()
            .map(|p| p.contains("\"requests\";q=5")),
        Some(true),
        "{v}"
    );
    for _ in 0..3 {
        assert_eq!(api.check(&b_secret).await["allowed"], true);
    }
    let v = api.check(&b_secret).await;
    assert_eq!(denied_by(&v), Some("team"), "{v}");

    // A key's own limit wins over its tier's.
    let (c, c_secret) = api
        .key("globex", "free", json!({"requests": {"limit": 2}}))
        .await;
    assert_eq!(api.check(&c_secret).await["allowed"], true);
    assert_eq!(api.check(&c_secret).await["allowed"], true);
    assert_eq!(denied_by(&api.check(&c_secret).await), Some("requests"));
    let (_, limits) = api.get(&format!("/v1/keys/{c}/limits")).await;
    let shown: Vec<(&str, &str, u64)> = limits["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap(),
                l["source"].as_str().unwrap(),
                l["limit"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [("requests", "override", 2), ("team", "tier", 8)],
        "{limits}"
    );

    // Moving a key to another tier keeps what it used of a limit of the same shape.
    let (status, v) = api
        .patch(
            &format!("/v1/keys/{c}"),
            json!({"tier": "pro", "overrides": {}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = api.check(&c_secret).await;
    assert_eq!(v["allowed"], true, "{v}");
    let requests = v["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "requests")
        .unwrap();
    assert_eq!(
        (requests["limit"].as_u64(), requests["remaining"].as_u64()),
        (Some(100), Some(97)),
        "{v}"
    );

    // Usage now, read without consuming.
    let (_, now) = api.get(&format!("/v1/keys/{a}/usage")).await;
    let standing: Vec<(&str, u64, u64)> = now["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap(),
                l["limit"].as_u64().unwrap(),
                l["used"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(standing, [("requests", 5, 5), ("team", 8, 8)], "{now}");

    // History: written by the batch writer within its flush interval.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 3_600_000;
    let history = format!("/v1/keys/{a}/usage/history?granularity=minute&from={hour_ago}");
    let written = eventually(Duration::from_secs(10), || async {
        let (_, h) = api.get(&history).await;
        let sum = |f: &str| total(&h, f);
        (sum("requests"), sum("allowed"), sum("denied"), sum("units")) == (6, 5, 1, 5)
    })
    .await;
    assert!(written, "{}", api.get(&history).await.1);
    let (_, daily) = api
        .get(&format!(
            "/v1/keys/{a}/usage/history?granularity=day&from={hour_ago}"
        ))
        .await;
    // Summed: a test running across midnight UTC spans two days.
    assert_eq!(total(&daily, "requests"), 6, "{daily}");
    // An owner's keys together (A and B are acme's), and when a key was last used.
    let owner = format!("/v1/owners/acme/usage/history?granularity=day&from={hour_ago}");
    let billed = eventually(Duration::from_secs(10), || async {
        let (_, h) = api.get(&owner).await;
        total(&h, "requests") == 10
    })
    .await;
    assert!(billed, "{}", api.get(&owner).await.1);
    let (_, h) = api.get(&owner).await;
    assert_eq!((total(&h, "allowed"), total(&h, "denied")), (8, 2), "{h}");
    let (_, record) = api.get(&format!("/v1/keys/{a}")).await;
    assert!(record["last_used_at"].as_i64().unwrap() > 0, "{record}");
    let (status, _) = api
        .get(&format!("/v1/keys/{a}/usage/history?granularity=week"))
        .await;
    assert_eq!(status, 422);
    let (status, _) = api
        .get(&format!(
            "/v1/keys/{a}/usage/history?granularity=minute&from=0&to=4000000000000"
        ))
        .await;
    assert_eq!(status, 422, "too many buckets");
    let (status, _) = api.get("/v1/keys/key_0000000000000000/usage/history").await;
    assert_eq!(status, 404);

    // Violations: each denial, by key, without secrets.
    let (_, v) = api.get(&format!("/v1/violations?key_id={a}")).await;
    let list = v["violations"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(
        (list[0]["rule"].as_str(), list[0]["code"].as_str()),
        (Some("requests"), Some("RATE_LIMITED"))
    );
    assert_eq!(
        list[0]["subject"],
        json!({"ip": "192.0.2.7", "path": "/orders"})
    );
    let written = eventually(Duration::from_secs(10), || async {
        api.get("/v1/violations").await.1["violations"]
            .as_array()
            .map_or(0, Vec::len)
            == 3
    })
    .await;
    assert!(written);
    let (_, v) = api
        .get("/v1/violations?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z")
        .await;
    assert_eq!(v["violations"], json!([]));
    assert!(
        !api.get("/v1/violations")
            .await
            .1
            .to_string()
            .contains("tg_live_")
    );

    // Tiers through the API: listed, changed (and in force at once), refused with paths.
    let (_, tiers) = api.get("/v1/tiers").await;
    assert_eq!(tiers["tiers"].as_object().unwrap().len(), 2, "{tiers}");
    let (status, v) = api
        .send(
            reqwest::Method::PUT,
            "/v1/tiers/free",
            Some(json!({"limits": [
                {"name": "requests", "algorithm": "fixed_window", "anchor": "first_hit", "limit": 6, "period": "1h"},
                {"name": "team", "algorithm": "fixed_window", "anchor": "first_hit", "limit": 20, "period": "1h", "per": "owner"},
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(api.check(&a_secret).await["allowed"], true);
    assert_eq!(denied_by(&api.check(&a_secret).await), Some("requests"));
    let (status, v) = api
        .send(
            reqwest::Method::PUT,
            "/v1/tiers/free",
            Some(json!({"limits": [{"name": "requests", "limit": 5, "period": "1 mintue"}]})),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["path"], "tiers.free.limits[0].period", "{v}");
    let (status, _) = api
        .send(reqwest::Method::DELETE, "/v1/tiers/pro", None)
        .await;
    assert_eq!(status, 409, "a key is on pro");
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            "/v1/tiers/gold",
            Some(json!({"limits": [{"name": "requests", "limit": 1000, "period": "1m"}]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = api
        .send(reqwest::Method::DELETE, "/v1/tiers/gold", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api.get("/v1/tiers/gold").await;
    assert_eq!(status, 404);
    // Written back, so a restart keeps the change.
    let saved = std::fs::read_to_string(&server.config).unwrap();
    assert!(
        saved.contains("limit: 6") && !saved.contains("gold"),
        "{saved}"
    );
}

#[tokio::test]
async fn tiers_usage_and_violations_on_sqlite() {
    suite("url: \"sqlite://usage.db\"").await;
}

#[tokio::test]
async fn tiers_usage_and_violations_on_postgres() {
    let pg = Postgres::start().unwrap();
    suite(&format!("url: \"{}\"", pg.url())).await;
}

/// A tier is removed only when no key, active or switched off, is on it, and never while a
/// key is being put on it: after every round, either the removal was refused or no key
/// landed on the tier.
#[tokio::test]
async fn a_tier_and_its_keys_never_part_on_sqlite() {
    let server = Server::start_with_env(
        &format!("database: {{ url: \"sqlite://tiers.db\" }}\n{TIERS}"),
        &[("TOLLGATE_KEY_SECRET", SECRET)],
    );
    let api = Api::new(&server);
    let silver = json!({"limits": [{"name": "requests", "limit": 50, "period": "1m"}]});
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            "/v1/tiers/silver",
            Some(silver.clone()),
        )
        .await;
    assert_eq!(status, 201);
    let (id, _) = api.key("acme", "silver", Value::Null).await;
    let (status, v) = api
        .patch(&format!("/v1/keys/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = api
        .send(reqwest::Method::DELETE, "/v1/tiers/silver", None)
        .await;
    assert_eq!(status, 409, "a switched-off key is still on silver: {v}");

    // Nor does a whole new policy drop it, and a refused one changes nothing.
    let put_config = |body: String| {
        api.c
            .put(format!("{}/v1/config", api.base))
            .body(body)
            .send()
    };
    let r = put_config(TIERS.into()).await.unwrap();
    assert_eq!(r.status(), 409);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["type"], "https://tollgate.dev/problems/tier-in-use");
    let (_, tiers) = api.get("/v1/tiers").await;
    assert!(tiers["tiers"]["silver"].is_object(), "{tiers}");
    // A policy that keeps silver passes.
    let (_, config) = api.get("/v1/config").await;
    let r = put_config(config.to_string()).await.unwrap();
    assert_eq!(r.status(), 200);

    // The configuration file is the operator's own: an edit that drops the tier takes
    // effect, and the key then cannot be switched back on.
    std::fs::write(
        &server.config,
        format!("database: {{ url: \"sqlite://tiers.db\" }}\n{TIERS}"),
    )
    .unwrap();
    let dropped = eventually(Duration::from_secs(10), || async {
        let (_, tiers) = api.get("/v1/tiers").await;
        tiers["tiers"].get("silver").is_none()
    })
    .await;
    assert!(dropped, "the file's edit was not loaded");
    let warned = eventually(Duration::from_secs(10), || async {
        server
            .log_text()
            .contains(r#"the reloaded policy has no tier "silver", and keys are on it"#)
    })
    .await;
    assert!(
        warned,
        "no warning of the keys left on silver:\n{}",
        server.log_text()
    );
    let (status, v) = api
        .patch(&format!("/v1/keys/{id}"), json!({"enabled": true}))
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["path"], "tier", "{v}");

    for round in 0..16 {
        let tier = format!("t{round}");
        let (status, _) = api
            .send(
                reqwest::Method::PUT,
                &format!("/v1/tiers/{tier}"),
                Some(silver.clone()),
            )
            .await;
        assert_eq!(status, 201);
        let mut creates = Vec::new();
        for _ in 0..6 {
            let (c, base, tier) = (api.c.clone(), api.base.clone(), tier.clone());
            creates.push(tokio::spawn(async move {
                c.post(format!("{base}/v1/keys"))
                    .json(&json!({"name": "k", "owner": "o", "tier": tier}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let (removal, _) = api
            .send(reqwest::Method::DELETE, &format!("/v1/tiers/{tier}"), None)
            .await;
        let mut created = 0;
        for c in creates {
            let status = c.await.unwrap();
            assert!(status == 201 || status == 422, "create answered {status}");
            created += usize::from(status == 201);
        }
        let (_, keys) = api.get(&format!("/v1/keys?tier={tier}")).await;
        let on_tier = keys["keys"].as_array().map_or(0, Vec::len);
        assert_eq!(on_tier, created, "{keys}");
        match removal {
            204 => assert_eq!(created, 0, "round {round}: keys left on a removed tier"),
            409 => assert!(created > 0, "round {round}: refused with no key on it"),
            other => panic!("round {round}: DELETE answered {other}"),
        }
    }
}

/// Sends SIGTERM and waits for the process to exit by itself.
fn terminate(server: &mut Server) {
    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "exit status {status}: {}",
                server.log_text()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("tollgate did not stop within 20 s:\n{}", server.log_text());
}

/// Decisions made with keys under concurrency, then a graceful shutdown before the
/// writer's first flush: every decision's event is in the database.
async fn flush_suite(url: &str) {
    let mut server = Server::start_with_env(
        &format!("database: {{ url: \"{url}\", flush_interval: 1m }}\n{TIERS}"),
        &[("TOLLGATE_KEY_SECRET", SECRET)],
    );
    let api = Api::new(&server);
    let (_, free) = api.key("acme", "free", Value::Null).await;
    let (_, pro) = api.key("globex", "pro", Value::Null).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let secret = if i % 2 == 0 {
            free.clone()
        } else {
            pro.clone()
        };
        let c = api.c.clone();
        let url = format!("{}/v1/check", api.base);
        tasks.push(tokio::spawn(async move {
            let mut made = 0;
            for _ in 0..25 {
                let r = c
                    .post(&url)
                    .json(&json!({"subject": {"api_key": secret}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                made += 1;
            }
            made
        }));
    }
    let mut decisions = 0;
    for t in tasks {
        decisions += t.await.unwrap();
    }
    terminate(&mut server);
    let url = if url.starts_with("sqlite://") {
        format!(
            "sqlite://{}",
            server
                .config
                .parent()
                .unwrap()
                .join(url.trim_start_matches("sqlite://"))
                .display()
        )
    } else {
        url.to_owned()
    };
    let secret = tollgate_registry::KeySecret::new(SECRET.as_bytes().to_vec()).unwrap();
    let reg = tollgate_registry::Registry::open(&url, secret)
        .await
        .unwrap();
    assert_eq!(reg.count_usage_events(None).await.unwrap(), decisions);
    assert_eq!(decisions, 400);
    assert!(server.log_text().contains("usage flushed"));
}

#[tokio::test]
async fn shutdown_flushes_every_usage_event_on_sqlite() {
    flush_suite("sqlite://flush.db").await;
}

#[tokio::test]
async fn shutdown_flushes_every_usage_event_on_postgres() {
    let pg = Postgres::start().unwrap();
    flush_suite(&pg.url()).await;
}
