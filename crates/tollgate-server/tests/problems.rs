//! Every route that reads a body or a query answers a bad one as problem+json: a body that
//! is not JSON, JSON of the wrong shape, a wrong content type, a bad query parameter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use common::Server;
use reqwest::Method;
use serde_json::Value;

const SECRET: &str = "a server secret of at least 32 bytes!!";
const TOKEN: &str = "admin-token";

/// Sends `body` with `content_type` and returns the status and the problem, after checking
/// that it is one.
async fn send(
    server: &Server,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method.clone(), server.url(path))
        .bearer_auth(TOKEN)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert_eq!(
        kind, "application/problem+json",
        "{method} {path} ({content_type}, {body:?}) answered {status} as {kind:?}: {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn every_route_answers_bad_bodies_and_queries_as_problems() {
    let yaml = "database: {}\nrules:\n  - { name: per-user, key: \"{user}\", limit: 5, period: 1m }\ntiers:\n  free:\n    limits:\n      - { name: requests, limit: 10, period: 1s }\n";
    let server = Server::start_with_env(
        yaml,
        &[
            ("TOLLGATE_KEY_SECRET", SECRET),
            ("TOLLGATE_ADMIN_TOKEN", TOKEN),
        ],
    );
    let created: Value = reqwest::Client::new()
        .post(server.url("/v1/keys"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "k", "owner": "acme", "tier": "free"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["key"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();

    // (method, path, a JSON value of the wrong shape, the field it should name)
    let json_routes = [
        (
            Method::POST,
            "/v1/check".to_owned(),
            r#"{"subject": {"user": 42}}"#,
            "subject.user",
        ),
        (
            Method::POST,
            "/v1/release".to_owned(),
            r#"{"lease_id": 7}"#,
            "lease_id",
        ),
        (
            Method::POST,
            "/v1/keys".to_owned(),
            r#"{"name": ["k"]}"#,
            "name",
        ),
        (
            Method::POST,
            "/v1/keys/verify".to_owned(),
            r#"{"key": 1}"#,
            "key",
        ),
        (
            Method::PATCH,
            format!("/v1/keys/{id}"),
            r#"{"name": {}}"#,
            "name",
        ),
        (
            Method::POST,
            format!("/v1/keys/{id}/rotate"),
            r#"{"grace_seconds": "soon"}"#,
            "grace_seconds",
        ),
    ];
    for (method, path, wrong_shape, field) in &json_routes {
        let (status, p) = send(
            &server,
            method.clone(),
            path,
            "application/json",
            "{not json",
        )
        .await;
        assert_eq!(status, 400, "{method} {path}: {p}");
        let (status, p) = send(
            &server,
            method.clone(),
            path,
            "application/json",
            wrong_shape,
        )
        .await;
        assert_eq!(status, 422, "{method} {path}: {p}");
        assert_eq!(p["errors"][0]["path"], *field, "{method} {path}: {p}");
        let (status, p) = send(&server, method.clone(), path, "text/plain", wrong_shape).await;
        assert_eq!(status, 415, "{method} {path}: {p}");
        let (status, _) = send(
            &server,
            method.clone(),
            path,
            "application/x-www-form-urlencoded",
            "a=b",
        )
        .await;
        assert_eq!(status, 415, "{method} {path}");
        // No internal type names in what a caller reads.
        let (_, p) = send(&server, method.clone(), path, "application/json", "[]").await;
        assert!(!p.to_string().contains("struct"), "{method} {path}: {p}");
    }

    // Documents: YAML or JSON; an image is not one.
    for (method, path) in [(Method::PUT, "/v1/config"), (Method::PUT, "/v1/tiers/pro")] {
        let (status, _) = send(&server, method.clone(), path, "image/png", "x").await;
        assert_eq!(status, 415, "{method} {path}");
        let (status, p) = send(&server, method.clone(), path, "application/yaml", "a: [").await;
        assert_eq!(status, 400, "{method} {path}: {p}");
    }

    // Queries.
    for path in [
        "/v1/keys?limit=many",
        "/v1/audit?limit=-1",
        "/v1/violations?after=yesterday",
        "/v1/counters?rule=only",
    ] {
        let (status, p) = send(&server, Method::GET, path, "application/json", "").await;
        assert!(status == 400 || status == 422, "{path}: {status} {p}");
        assert!(!p.to_string().contains("struct"), "{path}: {p}");
    }
    for path in [
        format!("/v1/keys/{id}/usage/history?granularity=fortnight"),
        "/v1/owners/o/usage/history?from=soon".to_owned(),
    ] {
        let (status, p) = send(&server, Method::GET, &path, "application/json", "").await;
        assert!((400..500).contains(&status), "{path}: {status} {p}");
    }

    // A method a route does not take: 405, a problem too.
    for (method, path) in [(Method::GET, "/v1/check"), (Method::PUT, "/v1/keys/verify")] {
        let (status, p) = send(&server, method.clone(), path, "application/json", "").await;
        assert_eq!(status, 405, "{method} {path}: {p}");
        assert_eq!(
            p["type"],
            "https://tollgate.dev/problems/method-not-allowed"
        );
    }

    // `[]` and `{}` on /v1/check say what the body should be.
    let (_, p) = send(&server, Method::POST, "/v1/check", "application/json", "[]").await;
    assert!(p["detail"].as_str().unwrap().contains("\"checks\""), "{p}");
    let (_, p) = send(&server, Method::POST, "/v1/check", "application/json", "{}").await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("`subject`") && detail.contains("`checks`"),
        "{p}"
    );
}
