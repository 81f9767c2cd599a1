//! Billing on the real binary: the current period projected from decisions made through
//! `/v1/check`, and the records route in its three formats.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Server, eventually};
use serde_json::{Value, json};

const SECRET: &str = "a server secret of at least 32 bytes!!";

const CONFIG: &str = r#"
database: { url: "sqlite://billing.db", flush_interval: 50ms }
billing:
  time_zone: Europe/Berlin
  currency: EUR
  plans:
    pro: { base_fee: 4900, included: 5, overage: { price: 200, per: 1000 } }
rules: []
tiers:
  pro:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 100, period: 1h }
  free:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 100, period: 1h }
"#;

#[tokio::test]
async fn the_current_period_and_the_records() {
    let server = Server::start_with_env(CONFIG, &[("TOLLGATE_KEY_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let post = |path: &str, body: Value| c.post(server.url(path)).json(&body).send();
    let r = post(
        "/v1/keys",
        json!({"name": "k", "owner": "acme", "tier": "pro"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    let secret = key["secret"].as_str().unwrap().to_string();
    // A key on a tier without a plan is not billed.
    post(
        "/v1/keys",
        json!({"name": "f", "owner": "acme", "tier": "free"}),
    )
    .await
    .unwrap();

    // Nothing used yet: the base fee alone.
    let url = server.url("/v1/owners/acme/billing/current");
    let now: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["lines"].as_array().unwrap().len(), 1, "{now}");
    assert_eq!(now["lines"][0]["units"], 0);
    assert_eq!(now["total"], 4_900);

    for _ in 0..4 {
        let r = post(
            "/v1/check",
            json!({"subject": {"api_key": secret, "ip": "192.0.2.1"}, "cost": 2}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    // 8 units, 3 over the included 5 at 2.00 per 1,000: one cent.
    let billed = eventually(Duration::from_secs(10), || async {
        let now: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
        now["lines"][0]["units"] == 8
    })
    .await;
    assert!(billed, "usage reached the projection");
    let now: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    let line = &now["lines"][0];
    assert_eq!(line["tier"], "pro");
    assert_eq!(line["currency"], "EUR");
    assert_eq!(
        (line["overage_units"].clone(), line["amount"].clone()),
        (json!(3), json!(4_901))
    );
    assert!(line["period"].as_str().unwrap().len() == 7, "{line}");

    // No period has closed yet: empty in every format, with a CSV header.
    let records = server.url("/v1/billing/records?owner=acme");
    let v: Value = c.get(&records).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["records"], json!([]));
    let csv = c
        .get(&records)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.text()
            .await
            .unwrap()
            .starts_with("scope,account,owner,tier,")
    );
    let bad = c
        .get(server.url("/v1/billing/records?format=xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
}

#[test]
fn billing_needs_a_database_and_names_bad_settings() {
    let (ok, out) = common::check_config(
        "billing: { time_zone: Nowhere/Land, plans: { pro: { base_fee: 1.5 } } }\nrules: []\n",
    );
    assert!(!ok);
    for want in [
        "billing:",
        "billing.time_zone:",
        "billing.plans.pro.base_fee:",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
}

/// Owner records over the admin API, and a dead-lettered job listed, retried and
/// discarded.
#[tokio::test]
async fn owners_and_the_dead_letter_queue() {
    let server = Server::start_with_env(CONFIG, &[("TOLLGATE_KEY_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let owner = server.url("/v1/owners/acme");
    let contact = json!({"name": "Acme", "email": "ops@acme.test",
        "webhook_url": "https://hooks.acme.test/tollgate", "webhook_secret": "whsec_c2VjcmV0"});
    let r = c.put(&owner).json(&contact).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown["webhook_signed"], true);
    assert!(
        !shown.to_string().contains("whsec_"),
        "the secret is never shown"
    );
    assert_eq!(
        c.put(&owner).json(&contact).send().await.unwrap().status(),
        200
    );
    let bad = c
        .put(&owner)
        .json(&json!({"email": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422, "{:?}", bad.text().await);
    let list: Value = c
        .get(server.url("/v1/owners"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["owners"][0]["id"], "acme");
    assert_eq!(c.delete(&owner).send().await.unwrap().status(), 204);
    assert_eq!(c.get(&owner).send().await.unwrap().status(), 404);

    // A job that failed for good, as a delivery worker leaves it.
    let registry = tollgate_registry::Registry::open(
        &format!(
            "sqlite://{}",
            server.dir.path().join("billing.db").display()
        ),
        tollgate_registry::KeySecret::new(SECRET.as_bytes().to_vec()).unwrap(),
    )
    .await
    .unwrap();
    let now = tollgate_core::time::now_ms();
    registry
        .enqueue(
            &tollgate_registry::NewJob {
                kind: "deliver".into(),
                payload: json!({"channel": "ops"}),
                idempotency_key: "alert-1:ops".into(),
                max_attempts: 3,
                run_at: now,
            },
            now,
        )
        .await
        .unwrap();
    let job = registry
        .claim_jobs("w", &["deliver"], 1, Duration::from_secs(30), now)
        .await
        .unwrap()
        .remove(0);
    registry
        .fail_job(&job.id, "w", "410 Gone", None, now)
        .await
        .unwrap();

    let dead: Value = c
        .get(server.url("/v1/jobs?state=dead"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dead["jobs"][0]["id"], job.id.as_str());
    assert_eq!(dead["jobs"][0]["last_error"], "410 Gone");
    let path = |verb: &str| server.url(&format!("/v1/jobs/{}/{verb}", job.id));
    let retried: Value = c
        .post(path("retry"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (retried["state"].clone(), retried["attempts"].clone()),
        (json!("queued"), json!(0))
    );
    // A queued job cannot be retried, but can be discarded.
    assert_eq!(c.post(path("retry")).send().await.unwrap().status(), 409);
    let discarded: Value = c
        .post(path("discard"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discarded["state"], "discarded");
    let bad = c
        .get(server.url("/v1/jobs?state=lost"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        c.get(server.url("/v1/jobs/job_none"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
