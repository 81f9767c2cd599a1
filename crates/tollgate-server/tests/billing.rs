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
