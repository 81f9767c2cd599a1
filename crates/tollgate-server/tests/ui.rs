//! The dashboard at `/ui`: its page and assets are served from the binary with their
//! content types and a strict Content-Security-Policy, and any path under `/ui/` that is
//! not an asset is the page (the front end routes by path).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    missing_docs
)]

mod common;

use common::Server;

async fn get(server: &Server, path: &str) -> (u16, String, String, String) {
    let r = reqwest::get(server.url(path)).await.unwrap();
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let kind = header("content-type");
    let csp = header("content-security-policy");
    (status, kind, csp, r.text().await.unwrap())
}

#[tokio::test]
async fn the_dashboard_and_its_assets_are_served_with_a_strict_policy() {
    let server =
        Server::start("rules:\n  - { name: per-user, key: \"{user}\", limit: 5, period: 1m }\n");
    for path in [
        "/ui",
        "/ui/",
        "/ui/keys",
        "/ui/keys/some-id",
        "/ui/dead-letters",
        "/ui/dead-letters/7",
    ] {
        let (status, kind, csp, body) = get(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(kind, "text/html; charset=utf-8", "{path}");
        assert!(
            body.contains("<script type=\"module\" crossorigin src=\"/ui/app.js\">"),
            "{path}: {body}"
        );
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
    let (status, kind, _, body) = get(&server, "/ui/app.js").await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/javascript; charset=utf-8");
    assert!(body.contains("Bearer"));
    assert!(
        body.contains("/v1/dead-letters"),
        "the dead letters page is built in"
    );
    let (status, kind, _, _) = get(&server, "/ui/app.css").await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/css; charset=utf-8");
}

#[tokio::test]
async fn explain_answers_what_a_check_would_get_without_consuming() {
    let token = "admin-token";
    let server = Server::start_with_env(
        "rules:\n  - { name: per-user, key: \"user:{user}\", limit: 2, period: 1m }\n",
        &[("TOLLGATE_ADMIN_TOKEN", token)],
    );
    let c = reqwest::Client::new();
    let explain = || async {
        let r = c
            .post(server.url("/v1/explain"))
            .bearer_auth(token)
            .json(&serde_json::json!({"subject": {"user": "alice"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().await.unwrap()
    };
    let mut first = None;
    for _ in 0..3 {
        let x = explain().await;
        assert_eq!(x["consumed"], false);
        assert_eq!(x["rules_total"], 1);
        assert_eq!(x["rules_examined"], 1);
        assert_eq!(x["decision"]["allowed"], true, "{x}");
        let limit = &x["decision"]["limits"][0];
        assert_eq!(limit["name"], "per-user");
        assert_eq!(limit["key"], "user:alice");
        // Nothing consumed: the counter reads the same however often it is explained.
        let remaining = limit["remaining"].as_u64().unwrap();
        assert_eq!(*first.get_or_insert(remaining), remaining, "{x}");
        assert!(remaining >= 1, "{x}");
    }
    let bad = c
        .post(server.url("/v1/explain"))
        .bearer_auth(token)
        .json(&serde_json::json!({"subject": {"nope": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn the_live_overview_streams_snapshots_to_a_viewer_of_the_admin_api() {
    let token = "admin-token";
    let server = Server::start_with_env(
        "rules:\n  - { name: per-user, key: \"user:{user}\", limit: 2, period: 1m }\n",
        &[("TOLLGATE_ADMIN_TOKEN", token)],
    );
    let c = reqwest::Client::new();
    let refused = c.get(server.url("/v1/live")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let mut r = c
        .get(server.url("/v1/live"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains("\n\n") && std::time::Instant::now() < deadline {
        let chunk = r.chunk().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: snapshot\n"), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(snapshot["store"]["healthy"], true, "{snapshot}");
    assert!(snapshot["decisions_per_second"].is_number(), "{snapshot}");
    assert!(snapshot["top_denied_rules"].is_array(), "{snapshot}");
}
