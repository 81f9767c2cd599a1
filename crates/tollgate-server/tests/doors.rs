//! One decision path: the same key through `POST /v1/check`, `/v1/authorize` and Envoy's
//! `ShouldRateLimit` consumes one counter, gets the same decisions, and leaves the same
//! usage events and violations in the registry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Server, eventually};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use serde_json::{Value, json};

const SECRET: &str = "a server secret of at least 32 bytes!!";

/// A tier of three requests an hour per key, in a window anchored at the first request, and
/// an Envoy domain whose `api_key` descriptor carries the key and applies nothing else.
const CONFIG: &str = r#"
database: { url: "sqlite://doors.db", flush_interval: 50ms }
tiers:
  free:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 3, period: 1h }
envoy:
  - domain: api
    descriptors:
      - key: api_key
        rate_limit: { unlimited: true }
"#;

/// What one door answered, in the same terms for every door.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    allowed: bool,
    remaining: Option<u64>,
}

async fn check(c: &reqwest::Client, server: &Server, secret: &str) -> Answer {
    let v: Value = c
        .post(server.url("/v1/check"))
        .json(&json!({"subject": {"api_key": secret, "ip": "192.0.2.9"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Answer {
        allowed: v["allowed"].as_bool().unwrap(),
        remaining: v["limits"][0]["remaining"].as_u64(),
    }
}

async fn authorize(c: &reqwest::Client, server: &Server, secret: &str) -> Answer {
    let r = c
        .get(server.url("/v1/authorize"))
        .header("x-api-key", secret)
        .send()
        .await
        .unwrap();
    let allowed = r.status() == 200;
    assert!(allowed || r.status() == 429, "{}", r.status());
    // `RateLimit: "requests";r=2;t=3600`
    let remaining = r
        .headers()
        .get("ratelimit")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(";r=").nth(1))
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.parse().ok());
    Answer { allowed, remaining }
}

async fn envoy(server: &Server, secret: &str) -> Answer {
    let addr = format!("http://{}", server.grpc.as_deref().unwrap());
    let mut client = RateLimitServiceClient::connect(addr).await.unwrap();
    let request = RateLimitRequest {
        domain: "api".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "api_key".into(),
                value: secret.into(),
            }],
            ..Default::default()
        }],
        hits_addend: 0,
    };
    let answer = client
        .should_rate_limit(request)
        .await
        .unwrap()
        .into_inner();
    Answer {
        allowed: answer.overall_code == 1,
        remaining: Some(u64::from(answer.statuses[0].limit_remaining)),
    }
}

#[tokio::test]
async fn every_door_shares_one_decision_path() {
    let server = Server::start_with_env(CONFIG, &[("TOLLGATE_KEY_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let created: Value = c
        .post(server.url("/v1/keys"))
        .json(&json!({"name": "k", "owner": "acme", "tier": "free"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();

    // Three doors, one counter: each admits one of the three and sees what is left.
    let admitted = [
        check(&c, &server, &secret).await,
        authorize(&c, &server, &secret).await,
        envoy(&server, &secret).await,
    ];
    let expected = |remaining| Answer {
        allowed: true,
        remaining: Some(remaining),
    };
    assert_eq!(admitted, [expected(2), expected(1), expected(0)]);
    // The fourth request is denied whichever door it comes through.
    let denied = [
        check(&c, &server, &secret).await,
        authorize(&c, &server, &secret).await,
        envoy(&server, &secret).await,
    ];
    for d in &denied {
        assert_eq!(
            d,
            &Answer {
                allowed: false,
                remaining: Some(0)
            }
        );
    }

    // Every decision left a usage event, and every denial a violation, whatever the door.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 3_600_000;
    let history = format!("/v1/keys/{id}/usage/history?granularity=minute&from={hour_ago}");
    let written = eventually(Duration::from_secs(10), || async {
        let v: Value = c
            .get(server.url(&history))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
        let sum = |field: &str| {
            buckets
                .iter()
                .filter_map(|b| b[field].as_u64())
                .sum::<u64>()
        };
        sum("allowed") == 3 && sum("denied") == 3
    })
    .await;
    assert!(
        written,
        "usage history never showed 3 admitted and 3 denied"
    );
    let v: Value = c
        .get(server.url(&format!("/v1/violations?key_id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let violations = v["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 3, "{v}");
    for violation in violations {
        assert_eq!(violation["rule"], "requests", "{violation}");
        assert_eq!(violation["code"], "RATE_LIMITED", "{violation}");
        // The presented key never enters a record.
        assert!(!violation.to_string().contains(&secret), "{violation}");
    }
    // The one from Envoy names the descriptor, with the key's id in place of the key.
    assert!(
        violations.iter().any(|v| v["subject"]["domain"] == "api"
            && v["subject"]["descriptors"][0]["api_key"] == id.as_str()),
        "{v}"
    );
}
