//! `tollgate` processes sharing limits through a real Redis (single node and Cluster),
//! and what they answer while Redis is down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Server, eventually};
use serde_json::{Value, json};
use tollgate_testkit::{Cluster, Single};

const LIMIT: u32 = 200;

fn shared_policy(store: &str) -> String {
    format!(
        "{store}\nrules:\n  - {{ name: shared, key: \"all\", match: {{ user: \"*\" }}, algorithm: fixed_window, anchor: first_hit, limit: {LIMIT}, period: 1h }}\n"
    )
}

/// 64 clients spread over `servers` ask 640 times for a limit of 200 per minute.
async fn admitted_across(servers: &[Server]) -> (u32, u32) {
    let client = reqwest::Client::new();
    let admitted = Arc::new(AtomicU32::new(0));
    let failed = Arc::new(AtomicU32::new(0));
    let urls: Vec<String> = servers.iter().map(|s| s.url("/v1/check")).collect();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (client, url) = (client.clone(), urls[i % urls.len()].clone());
            let (admitted, failed) = (admitted.clone(), failed.clone());
            tokio::spawn(async move {
                for _ in 0..10 {
                    let body = json!({"subject": {"user": format!("u{i}")}});
                    match client.post(&url).json(&body).send().await {
                        Ok(r) if r.status() == 200 => {
                            let v: Value = r.json().await.unwrap();
                            assert_eq!(v["limits"][0]["degraded"], false, "{v}");
                            if v["allowed"] == true {
                                admitted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (
        admitted.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

/// Starts 3 instances on `store` and checks they admit exactly the limit together.
async fn exact_across_three(store: &str) {
    let servers: Vec<Server> = (0..3)
        .map(|_| Server::start(&shared_policy(store)))
        .collect();
    let (admitted, failed) = admitted_across(&servers).await;
    assert_eq!(failed, 0);
    assert_eq!(
        admitted, LIMIT,
        "640 requests over 3 instances, limit {LIMIT}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_admit_exactly_the_limit() {
    let redis = Single::start().unwrap();
    exact_across_three(&format!(
        "store: {{ kind: redis, url: \"{}\", timeout: 2s }}",
        redis.url()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_cluster_admit_exactly_the_limit() {
    let cluster = Cluster::start().unwrap();
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    exact_across_three(&format!(
        "store: {{ kind: redis, mode: cluster, urls: [{}], timeout: 2s }}",
        urls.join(", ")
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_each_rule_follows_its_fail_policy_and_service_returns() {
    let mut redis = Single::start().unwrap();
    let yaml = format!(
        r#"store: {{ kind: redis, url: "{}", timeout: 50ms, breaker: {{ failures: 2, cool_down: 100ms }} }}
rules:
  - {{ name: open, key: "o:{{user}}", limit: 1000, period: 1m, on_store_error: allow }}
  - {{ name: closed, key: "c:{{ip}}", limit: 1000, period: 1m, on_store_error: deny }}
  - {{ name: local, key: "l:{{tenant}}", limit: 3, period: 1h, algorithm: fixed_window, anchor: first_hit, on_store_error: local }}
"#,
        redis.url()
    );
    let server = Server::start(&yaml);
    let client = reqwest::Client::new();
    let url = server.url("/v1/check");
    let one = |subject: Value| ask(&client, &url, subject);
    let (v, _) = one(json!({"user": "a"})).await;
    assert_eq!(v["allowed"], true);
    assert_eq!(v["limits"][0]["degraded"], false);
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    // A Redis with no maxmemory (the test server's default) is ready, with a warning.
    let body = ready.text().await.unwrap();
    assert!(body.starts_with("ready\nwarning: "), "{body}");
    assert!(body.contains("maxmemory"), "{body}");

    redis.server.kill();
    // 16 clients at once, each asking 25 times for both rules.
    let load: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                for _ in 0..25 {
                    let (open, t1) = ask(&client, &url, json!({"user": "a"})).await;
                    assert_eq!(open["allowed"], true, "{open}");
                    assert_eq!(open["limits"][0]["degraded"], true, "{open}");
                    let (closed, t2) = ask(&client, &url, json!({"ip": "192.0.2.1"})).await;
                    assert_eq!(closed["allowed"], false, "{closed}");
                    assert_eq!(closed["limits"][0]["degraded"], true, "{closed}");
                    slowest = slowest.max(t1).max(t2);
                }
                slowest
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for task in load {
        slowest = slowest.max(task.await.unwrap());
    }
    // Loopback HTTP adds little; no answer may wait much past the 50 ms store timeout.
    assert!(
        slowest < Duration::from_millis(250),
        "slowest answer {slowest:?}"
    );
    let mut local = Vec::new();
    for _ in 0..5 {
        local.push(one(json!({"tenant": "t"})).await.0["allowed"] == true);
    }
    assert_eq!(
        local,
        [true, true, true, false, false],
        "local limits of the same size"
    );
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        503
    );
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tollgate_degraded_decisions_total")
                && l.contains("rule=\"closed\"")
                && l.contains("fail_policy=\"deny\"")),
        "{metrics}"
    );

    redis.server.restart().unwrap();
    let restarted = Instant::now();
    let back = eventually(Duration::from_secs(1), || async {
        one(json!({"user": "a"})).await.0["limits"][0]["degraded"] == false
    })
    .await;
    assert!(back, "not back within 1 s of the restart");
    assert!(restarted.elapsed() < Duration::from_secs(1));
    assert!(
        eventually(Duration::from_secs(1), || async {
            reqwest::get(server.url("/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await
    );
}

/// Asks `/v1/check` about `subject`: the answer and how long it took.
async fn ask(client: &reqwest::Client, url: &str, subject: Value) -> (Value, Duration) {
    let started = Instant::now();
    let v: Value = client
        .post(url)
        .json(&json!({ "subject": subject }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (v, started.elapsed())
}

#[test]
fn check_config_explains_limits_redis_cannot_count_exactly() {
    let (ok, text) = common::check_config(
        "store: { kind: redis, mode: sentinel, url: \"redis://127.0.0.1:1\" }\nrules:\n  - { name: huge, key: \"k:{user}\", algorithm: sliding_window, limit: 1000000000, period: 30d }\ntiers:\n  big:\n    limits:\n      - { name: vast, algorithm: sliding_window, limit: 1000000000, period: 30d }\n",
    );
    assert!(!ok);
    assert!(text.contains("store.master"), "{text}");
    assert!(text.contains("rules[0]") && text.contains("2^53"), "{text}");
    assert!(text.contains("tiers.big.limits[0]: vast"), "{text}");
}

#[tokio::test]
async fn tls_and_an_acl_user() {
    let acl = [
        "--user", "default", "off", "--user", "tg", "on", ">s3cret", "~tg:*", "+@all",
    ];
    let (redis, tls_port, ca) = Single::start_tls(&acl).unwrap();
    let ca = ca.to_string_lossy().into_owned();
    let policy =
        "rules:\n  - { name: r, key: \"u:{user}\", limit: 5, period: 1m, on_store_error: deny }\n";
    let good = Server::start_with_env(
        &format!(
            "store: {{ kind: redis, url: \"rediss://tg:s3cret@localhost:{tls_port}\", timeout: 2s }}\n{policy}"
        ),
        &[("SSL_CERT_FILE", &ca)],
    );
    let client = reqwest::Client::new();
    let v: Value = client
        .post(good.url("/v1/check"))
        .json(&json!({"subject": {"user": "1"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["allowed"], true, "{v}\n{}", good.log_text());
    assert_eq!(v["limits"][0]["degraded"], false, "{v}");
    assert_eq!(v["limits"][0]["remaining"], 4, "{v}");
    assert_eq!(
        reqwest::get(good.url("/readyz")).await.unwrap().status(),
        200
    );
    // The counter is in Redis, under the ACL user's key pattern.
    let keys = tollgate_testkit::cli(
        redis.server.port,
        &[
            "--user",
            "tg",
            "--pass",
            "s3cret",
            "--no-auth-warning",
            "KEYS",
            "tg:*",
        ],
    )
    .unwrap();
    assert!(keys.contains("u:1"), "{keys}");

    // A wrong password: every decision follows the fail policy, and /readyz says why.
    let bad = Server::start_with_env(
        &format!(
            "store: {{ kind: redis, url: \"rediss://tg:wrong@localhost:{tls_port}\", timeout: 2s }}\n{policy}"
        ),
        &[("SSL_CERT_FILE", &ca)],
    );
    let v: Value = client
        .post(bad.url("/v1/check"))
        .json(&json!({"subject": {"user": "1"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["allowed"], false, "{v}");
    assert_eq!(v["limits"][0]["degraded"], true, "{v}");
    let ready = reqwest::get(bad.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_sharing_a_key_secret_count_one_key_once() {
    const KEY_LIMIT: u32 = 30;
    let redis = Single::start().unwrap();
    let yaml = format!(
        "store: {{ kind: redis, url: \"{}\", timeout: 2s }}\nrules:\n  - {{ name: per-key, key: \"k:{{key}}\", match: {{ key: \"*\" }}, algorithm: fixed_window, anchor: first_hit, limit: {KEY_LIMIT}, period: 1h }}\n",
        redis.url()
    );
    let secret = [(
        "TOLLGATE_KEY_SECRET",
        "a fleet-wide secret of at least 32 bytes",
    )];
    let servers: Vec<Server> = (0..3)
        .map(|_| Server::start_with_env(&yaml, &secret))
        .collect();
    let client = reqwest::Client::new();
    let mut admitted = 0;
    for i in 0..90 {
        let body = json!({"subject": {"api_key": "tg_live_one_key_for_the_fleet"}});
        let r: Value = client
            .post(servers[i % 3].url("/v1/check"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["limits"][0]["name"], "per-key", "{r}");
        if r["allowed"] == true {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, KEY_LIMIT,
        "90 requests for one key over 3 instances"
    );
    // The counter is named by the key's fingerprint, never the key.
    let names = tollgate_testkit::cli(redis.server.port, &["--scan"]).unwrap();
    assert!(
        !names.contains("tg_live_one_key_for_the_fleet") && names.contains("kfp_"),
        "{names:?}"
    );
}

#[test]
fn a_shared_store_counting_keys_without_a_secret_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tollgate.yaml");
    std::fs::write(
        &file,
        "store: { kind: redis, url: \"redis://127.0.0.1:1\" }\nrules:\n  - { name: per-key, key: \"k:{key}\", match: { key: \"*\" }, limit: 30, period: 1h }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&file)
        .env_remove("TOLLGATE_KEY_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store: rules count API keys") && err.contains("TOLLGATE_KEY_SECRET"),
        "{err}"
    );
}

#[test]
fn check_config_warns_of_a_redis_that_would_grow_without_bound() {
    let check = |redis: &Single| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tollgate.yaml");
        std::fs::write(
            &file,
            format!(
                "store: {{ kind: redis, url: \"{}\" }}\nrules: [{{ name: a, key: \"{{user}}\", limit: 5, period: 1m }}]\n",
                redis.url()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let unbounded = check(&Single::start().unwrap());
    assert!(
        unbounded.contains("warning: store: redis has no maxmemory"),
        "{unbounded}"
    );
    let bounded = check(
        &Single::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lfu"])
            .unwrap(),
    );
    assert!(!bounded.contains("warning"), "{bounded}");
}
