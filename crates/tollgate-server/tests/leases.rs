//! Concurrency limits over the network: a decision names its lease, `POST /v1/release`
//! frees it before its `lease_ttl`, and `POST /v1/renew` keeps it for longer work.
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

const CONFIG: &str = r#"
rules:
  - { name: exports, key: "user:{user}", algorithm: concurrency, limit: 2, lease_ttl: 10m }
"#;

async fn post(c: &reqwest::Client, server: &Server, path: &str, body: Value) -> (u16, Value) {
    let r = c.post(server.url(path)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn check(c: &reqwest::Client, server: &Server) -> Value {
    post(c, server, "/v1/check", json!({"subject": {"user": "42"}}))
        .await
        .1
}

#[tokio::test]
async fn a_released_lease_frees_its_place_at_once() {
    let server = Server::start(CONFIG);
    let c = reqwest::Client::new();
    let first = check(&c, &server).await;
    let second = check(&c, &server).await;
    assert_eq!(
        (first["allowed"].as_bool(), second["allowed"].as_bool()),
        (Some(true), Some(true))
    );
    let lease = first["lease_id"].as_str().unwrap().to_owned();
    assert_eq!(first["limits"][0]["lease_id"], lease.as_str());
    assert_ne!(second["lease_id"], first["lease_id"]);
    let third = check(&c, &server).await;
    assert_eq!(third["allowed"], false, "{third}");
    assert!(third.get("lease_id").is_none(), "{third}");

    let (status, released) = post(&c, &server, "/v1/release", json!({"lease_id": lease})).await;
    assert_eq!(
        (status, &released["released"]),
        (200, &json!(true)),
        "{released}"
    );
    // Releasing again is harmless.
    let (status, again) = post(&c, &server, "/v1/release", json!({"lease_id": lease})).await;
    assert_eq!(
        (status, &again["released"]),
        (200, &json!(false)),
        "{again}"
    );
    let third = check(&c, &server).await;
    assert_eq!(third["allowed"], true, "{third}");

    // Forward-auth names its lease in a header; the batch form releases several.
    let r = c
        .get(server.url("/v1/authorize"))
        .header("x-forwarded-user", "7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let from_header = r.headers()["tollgate-lease-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, batch) = post(
        &c,
        &server,
        "/v1/release",
        json!({"lease_ids": [from_header, second["lease_id"]]}),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    let released: Vec<&Value> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["released"])
        .collect();
    assert_eq!(released, [&json!(true), &json!(true)], "{batch}");

    // A made-up or altered lease id is refused, naming the field.
    let last = if lease.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &lease[..lease.len() - 1]);
    let (status, p) = post(&c, &server, "/v1/release", json!({"lease_id": &forged})).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["errors"][0]["path"], "lease_id", "{p}");
    let (status, batch) = post(&c, &server, "/v1/release", json!({"lease_ids": [forged]})).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["results"][0]["released"], false, "{batch}");
    assert!(batch["results"][0]["error"].is_string(), "{batch}");
    let (status, p) = post(&c, &server, "/v1/release", json!({})).await;
    assert_eq!(status, 422, "{p}");
}

async fn renewals(server: &Server) {
    let c = reqwest::Client::new();
    let first = check(&c, server).await;
    let lease = first["lease_id"].as_str().unwrap().to_owned();
    let (status, renewed) = post(&c, server, "/v1/renew", json!({"lease_id": lease})).await;
    assert_eq!(
        (status, &renewed["renewed"]),
        (200, &json!(true)),
        "{renewed}"
    );
    let (status, batch) = post(
        &c,
        server,
        "/v1/renew",
        json!({"lease_ids": [lease, "l1.x"]}),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["results"][0]["renewed"], true, "{batch}");
    assert_eq!(batch["results"][1]["renewed"], false, "{batch}");
    assert!(batch["results"][1]["error"].is_string(), "{batch}");
    // Released, it is gone: renewing it answers false, not an error.
    post(&c, server, "/v1/release", json!({"lease_id": lease})).await;
    let (status, again) = post(&c, server, "/v1/renew", json!({"lease_id": lease})).await;
    assert_eq!((status, &again["renewed"]), (200, &json!(false)), "{again}");
    let (status, p) = post(&c, server, "/v1/renew", json!({"lease_id": "l1.made.up"})).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["errors"][0]["path"], "lease_id", "{p}");
}

#[tokio::test]
async fn a_lease_is_renewed_on_the_memory_store_and_on_redis() {
    renewals(&Server::start(CONFIG)).await;
    let redis = tollgate_testkit::Single::start().unwrap();
    let on_redis = format!(
        "store: {{ kind: redis, url: \"{}\", timeout: 2s }}\n{CONFIG}",
        redis.url()
    );
    renewals(&Server::start(&on_redis)).await;
}
