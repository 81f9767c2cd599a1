//! The debugging routes on the real binary: off by default, for the admin role only, a CPU
//! profile in both formats (one at a time), the runtime, and the configuration with its
//! secrets hidden.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::Server;
use serde_json::Value;

const TOKEN: &str = "debug-admin-token";

fn start(extra: &str) -> Server {
    Server::start_with_env(
        &format!(
            "store: {{ kind: redis, url: \"redis://:hunter2@127.0.0.1:1/0\" }}\n{extra}rules: []\n"
        ),
        &[("TOLLGATE_ADMIN_TOKEN", TOKEN)],
    )
}

#[tokio::test]
async fn off_unless_turned_on() {
    let server = start("");
    let c = reqwest::Client::new();
    let r = c
        .get(server.url("/v1/debug/runtime"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["type"], "https://tollgate.dev/problems/debug-off");
    // Nothing shows to a caller without the admin role.
    let r = c.get(server.url("/v1/debug/runtime")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn profiles_the_runtime_and_the_configuration_without_secrets() {
    // A profile samples for longer than other requests may take.
    let server = Server::start_with_env(
        "store: { kind: redis, url: \"redis://:hunter2@127.0.0.1:1/0\" }\ndebug: { enabled: true }\nrules: []\n",
        &[
            ("TOLLGATE_ADMIN_TOKEN", TOKEN),
            ("TOLLGATE_SERVER__REQUEST_TIMEOUT", "2s"),
        ],
    );
    let c = reqwest::Client::new();
    let get = |path: &str| c.get(server.url(path)).bearer_auth(TOKEN).send();

    let refused = c.get(server.url("/v1/debug/config")).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    let runtime: Value = get("/v1/debug/runtime")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        runtime["process"]["resident_bytes"].as_u64().unwrap() > 0,
        "{runtime}"
    );
    assert!(runtime["runtime"]["workers"].as_u64().unwrap() >= 1);
    assert!(
        runtime["connections"]["open"].as_u64().unwrap() >= 1,
        "{runtime}"
    );
    assert_eq!(runtime["version"], env!("CARGO_PKG_VERSION"));
    // The allocator's own figures: what the running server has committed.
    assert!(
        runtime["allocator"]["committed"]["current"]
            .as_u64()
            .unwrap()
            > 0,
        "{runtime}"
    );

    let config: Value = get("/v1/debug/config").await.unwrap().json().await.unwrap();
    let text = config.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(config["store"]["url"], "redis://127.0.0.1:1/<redacted>");
    assert_eq!(config["debug"]["enabled"], true);

    // Work to sample while the profiles run.
    let busy = {
        let (c, url) = (c.clone(), server.url("/v1/check"));
        tokio::spawn(async move {
            loop {
                let _ = c
                    .post(&url)
                    .json(&serde_json::json!({"subject": {"user": "u"}}))
                    .send()
                    .await;
            }
        })
    };
    // One profile at a time.
    let first = get("/v1/debug/pprof/profile?seconds=3");
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        get("/v1/debug/pprof/profile?seconds=1").await
    };
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(second.status(), 409);
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "image/svg+xml");
    let svg = first.text().await.unwrap();
    assert!(svg.contains("<svg"), "{}", &svg[..svg.len().min(200)]);

    let pprof = get("/v1/debug/pprof/profile?seconds=1&format=pprof")
        .await
        .unwrap();
    assert_eq!(pprof.status(), 200);
    assert_eq!(
        pprof.headers()["content-type"],
        "application/vnd.google.protobuf"
    );
    let bytes = pprof.bytes().await.unwrap();
    // Field 1 (the sample types), a length-delimited message, comes first.
    assert_eq!(bytes.first(), Some(&0x0a), "{bytes:?}");
    busy.abort();
    let bad = get("/v1/debug/pprof/profile?seconds=600").await.unwrap();
    assert_eq!(bad.status(), 400);
}
