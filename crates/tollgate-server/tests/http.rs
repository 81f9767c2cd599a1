//! The real binary over HTTP: decisions, headers, config, reloads, forward-auth, bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Server, eventually};
use serde_json::{Value, json};

async fn check(s: &Server, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(s.url("/v1/check"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn first_n_pass_then_one_is_denied_with_retry_after() {
    let s = Server::start(
        "rules: [{name: per-user, key: 'user:{user}', algorithm: gcra, limit: 3, period: 1m}]",
    );
    for i in 0..3 {
        let r = check(&s, json!({"subject": {"user": "42"}})).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["allowed"], true, "request {i}");
        assert_eq!(body["limits"][0]["remaining"], 2 - i);
    }
    let r = check(&s, json!({"subject": {"user": "42"}})).await;
    assert_eq!(r.status(), 200);
    // GCRA spaces 3 per minute 20 s apart: the next one fits 20 s after the first.
    assert_eq!(r.headers()["retry-after"], "20");
    let rl = r.headers()["ratelimit"].to_str().unwrap().to_string();
    assert_eq!(rl, r#""per-user";r=0;t=20"#);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["allowed"], false);
    assert_eq!(body["code"], "RATE_LIMITED");
    let retry_ms = body["retry_after_ms"].as_u64().unwrap();
    assert!((19_000..=20_000).contains(&retry_ms), "{retry_ms}");
    assert_eq!(body["limits"][0]["exceeded"], true);
    // Another user is not affected.
    let body: Value = check(&s, json!({"subject": {"user": "7"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["allowed"], true);
}

#[tokio::test]
async fn header_values_are_exact() {
    let s = Server::start(
        "rules: [{name: hourly, key: '{user}', algorithm: sliding_log, limit: 5, period: 1h}]",
    );
    check(&s, json!({"subject": {"user": "a"}})).await;
    let r = check(&s, json!({"subject": {"user": "a"}, "cost": 2})).await;
    let h = r.headers();
    assert_eq!(h["ratelimit-policy"], r#""hourly";q=5;w=3600"#);
    assert_eq!(h["ratelimit"], r#""hourly";r=2;t=3600"#);
    assert_eq!(h["x-ratelimit-limit"], "5");
    assert_eq!(h["x-ratelimit-remaining"], "2");
    assert_eq!(h["x-ratelimit-reset"], "3600");
    assert!(h.get("retry-after").is_none());
    assert!(h.get("x-request-id").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["headers"]["ratelimit"], r#""hourly";r=2;t=3600"#);
    assert_eq!(body["limits"][0]["window_ms"], 3_600_000);
}

#[tokio::test]
async fn dry_runs_and_batches() {
    let s = Server::start(
        "rules: [{name: r, key: '{user}', algorithm: fixed_window, limit: 2, period: 1h}]",
    );
    for _ in 0..3 {
        let body: Value = check(
            &s,
            json!({"subject": {"user": "d"}, "cost": 2, "dry_run": true}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(body["allowed"], true);
    }
    let body: Value = check(
        &s,
        json!({"checks": [
            {"subject": {"user": "d"}},
            {"subject": {"user": "d"}},
            {"subject": {"user": "d"}},
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let allowed: Vec<bool> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["allowed"].as_bool().unwrap())
        .collect();
    assert_eq!(allowed, [true, true, false]);
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_nothing_breaks() {
    let s = Server::start("rules: [{name: r, key: '{user}', limit: 5, period: 1m}]");
    let c = reqwest::Client::new();
    let send = |body: String| {
        c.post(s.url("/v1/check"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "malformed-body"),
        ("".into(), 400, "malformed-body"),
        (
            r#"{"subject": {"user": "1"}, "colour": 1}"#.into(),
            422,
            "unknown field `colour`",
        ),
        (r#"{"subject": {"user": 1}}"#.into(), 422, "invalid type"),
        (
            r#"{"subject": {"user": "1"}, "cost": -1}"#.into(),
            422,
            "invalid value",
        ),
        (
            r#"{"subject": {"ip": "300.1.1.1"}}"#.into(),
            422,
            "subject.ip",
        ),
        (
            r#"{"subject": {"user": "a\u0000b"}}"#.into(),
            422,
            "subject.user",
        ),
        (
            format!(r#"{{"subject": {{"user": "{}"}}}}"#, "x".repeat(8_000)),
            413,
            "body-too-large",
        ),
        (
            r#"{"checks": [{"subject": {}, "x": 1}]}"#.into(),
            422,
            "unknown field `x`",
        ),
    ];
    for (body, status, needle) in cases {
        let r = send(body.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{body:.60}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{body:.60}"
        );
        let text = r.text().await.unwrap();
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    let r = c.get(s.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(s.alive().await);
    let body: Value = check(
        &s,
        json!({"subject": {"user": "1"}, "cost": 1_000_000_000_000_000_000u64}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["allowed"], false);
    assert_eq!(body["retry_after_ms"], Value::Null);
}

#[tokio::test]
async fn config_round_trip_and_refusal() {
    let s = Server::start("rules: [{name: old, key: '{user}', limit: 5, period: 1m}]");
    let c = reqwest::Client::new();
    let new = "rules:\n  - name: new\n    key: 'u:{user}'\n    limit: 1\n    period: 1h\n";
    let r = c.put(s.url("/v1/config")).body(new).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = c
        .get(s.url("/v1/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["rules"][0]["name"], "new");
    assert!(got.get("server").is_none());
    // Written back, server settings kept.
    let on_disk = std::fs::read_to_string(&s.config).unwrap();
    assert!(
        on_disk.contains("new") && on_disk.contains("127.0.0.1:0"),
        "{on_disk}"
    );
    let body: Value = check(&s, json!({"subject": {"user": "z"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["limits"][0]["name"], "new");

    let bad = "rules: [{name: x, limit: 0, period: 1 mintue}, {name: x, limit: 1, period: 1s}]";
    let r = c.put(s.url("/v1/config")).body(bad).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    let paths: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["rules[0].limit", "rules[0].period", "rules[1].name"]
    );
    let got: Value = c
        .get(s.url("/v1/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["rules"][0]["name"], "new",
        "a refused policy changes nothing"
    );
    let r = c
        .put(s.url("/v1/config"))
        .body("server: {listen: '0.0.0.0:1'}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    // The admin routes keep the body limit too (4 KiB for test servers).
    let r = c
        .put(s.url("/v1/config"))
        .body(format!("rules: []\n#{}\n", "x".repeat(8_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("body-too-large"));
}

/// A body that is not a mapping is refused, not read as a policy without rules (found by
/// the contract tests: `""` emptied the policy).
#[tokio::test]
async fn a_policy_that_is_not_a_mapping_is_refused_and_changes_nothing() {
    let s = Server::start("rules: [{name: kept, key: '{user}', limit: 5, period: 1m}]");
    let c = reqwest::Client::new();
    for body in ["\"\"", "", "[]", "42", "null"] {
        let r = c
            .put(s.url("/v1/config"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{body:?}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["type"], "https://tollgate.dev/problems/invalid-request");
    }
    let got: Value = c
        .get(s.url("/v1/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["rules"][0]["name"], "kept");
}

#[tokio::test]
async fn counters_can_be_inspected_and_reset() {
    let s = Server::start(
        "rules: [{name: r, key: 'u:{user}', algorithm: fixed_window, limit: 2, period: 1h}]",
    );
    let c = reqwest::Client::new();
    check(&s, json!({"subject": {"user": "q"}})).await;
    let got: Value = c
        .get(s.url("/v1/counters?key=u:q"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["counters"][0]["remaining"], 1);
    let r = c
        .delete(s.url("/v1/counters/u:q?rule=r"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = c
        .get(s.url("/v1/counters?key=u:q&rule=r"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["counters"][0]["remaining"], 2);
    assert_eq!(
        c.get(s.url("/v1/counters?key=u:q&rule=nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn admin_routes_need_the_token() {
    let s = Server::start_with_env("rules: []", &[("TOLLGATE_ADMIN_TOKEN", "s3cret")]);
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(s.url("/v1/config")).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        c.get(s.url("/v1/config"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(s.url("/v1/config"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.delete(s.url("/v1/counters/x"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // The decision API stays open.
    assert_eq!(
        check(&s, json!({"subject": {"user": "1"}})).await.status(),
        200
    );
}

#[tokio::test]
async fn the_decision_routes_answer_every_method_and_path_as_routes_do() {
    let s = Server::start(
        "rules:
  - {name: r, key: '{user}', limit: 5, period: 1m}
  - {name: i, key: 'ip:{ip}', algorithm: fixed_window, limit: 5, period: 1h}",
    );
    let c = reqwest::Client::new();
    // Only POST decides on /v1/check; the rest is the router's 405 with what is allowed.
    let r = c.get(s.url("/v1/check")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    // A query string is not part of the path a route is taken by.
    let r = c
        .post(s.url("/v1/check?trace=1"))
        .json(&json!({"subject": {"user": "q"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ratelimit-policy"], "\"r\";q=5;w=60");
    // Near misses are not the decision routes.
    for path in ["/v1/check/", "/v1/checks", "/V1/check", "/v1/authorize/x"] {
        let r = c.post(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // Forward-auth takes any method: proxies send the original one, HEAD has no body.
    for method in ["GET", "POST", "PUT", "DELETE", "HEAD"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = c
            .request(method.clone(), s.url("/v1/authorize"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert!(
            r.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .contains(r#""i";r="#)
        );
    }
    // The peer's sixth request, whatever its method, is over the limit; the query is read.
    let authorize = |query: &str| c.get(s.url(&format!("/v1/authorize{query}"))).send();
    assert_eq!(authorize("").await.unwrap().status(), 429);
    let r = authorize("?deny_status=403").await.unwrap();
    assert_eq!(r.status(), 403);
    let r = authorize("?deny_status=500").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

const FORWARD_AUTH_RULES: &str = "rules:
  - {name: per-ip, key: '{ip}', algorithm: fixed_window, limit: 1, period: 1h}
  - {name: login, match: {method: POST, path: /login}, key: 'login:{ip}', algorithm: fixed_window, limit: 5, period: 1h}";

#[tokio::test]
async fn forward_auth_takes_the_subject_from_headers_and_trusts_only_proxies() {
    let s = Server::start(FORWARD_AUTH_RULES);
    let c = reqwest::Client::new();
    // The peer (127.0.0.1) is not a trusted proxy: X-Forwarded-For cannot spoof the client.
    let r = c
        .get(s.url("/v1/authorize"))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(s.url("/v1/authorize"))
        .header("x-forwarded-for", "198.51.100.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().get("retry-after").is_some());
    assert!(
        r.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .contains(r#""per-ip";r=0"#)
    );

    // Trust set through the environment overlay.
    let t = Server::start_with_env(
        FORWARD_AUTH_RULES,
        &[("TOLLGATE_SERVER__TRUSTED_PROXIES", "['127.0.0.0/8']")],
    );
    // Behind a trusted proxy, each forwarded client has its own counter.
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let r = c
            .get(t.url("/v1/authorize"))
            .header("x-forwarded-for", format!("{ip}, 127.0.0.1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ip}");
    }
    // nginx style original method and URI select the login rule.
    let r = c
        .get(t.url("/v1/authorize"))
        .header("x-real-ip", "203.0.113.9")
        .header("x-original-method", "POST")
        .header("x-original-uri", "/a/../login?next=/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .contains(r#""login";q=5"#)
    );
}

#[tokio::test]
async fn hot_reload_by_rename_under_load_fails_no_request() {
    let s = Server::start("rules: [{name: before, key: '{user}', limit: 1000000, period: 1s}]");
    let url = s.url("/v1/check");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4 {
        let (url, stop) = (url.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let (mut ok, mut failed) = (0u32, 0u32);
            // Bounded: stops when told, or after 2,000 requests.
            for i in 0..2_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let body = json!({"subject": {"user": format!("{w}-{i}")}});
                match c.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tmp = s.dir.path().join("next.yaml.tmp");
    std::fs::write(&tmp, "server: { listen: \"127.0.0.1:0\", max_body: 4KiB }\nrules: [{name: after, key: '{user}', limit: 1000000, period: 1s}]\n").unwrap();
    std::fs::rename(&tmp, &s.config).unwrap();
    let reloaded = eventually(Duration::from_secs(10), || async {
        let body: Value = check(&s, json!({"subject": {"user": "probe"}}))
            .await
            .json()
            .await
            .unwrap();
        body["limits"][0]["name"] == "after"
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reloaded, "the renamed file was not picked up");
    let mut total = 0;
    for h in load {
        let (ok, failed) = h.await.unwrap();
        assert_eq!(failed, 0);
        total += ok;
    }
    assert!(total > 0);

    // A broken file is refused and the policy in force stays.
    std::fs::write(&s.config, "rules: [{name: broken, limit: 0}]\n").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body: Value = check(&s, json!({"subject": {"user": "probe"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["limits"][0]["name"], "after");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("tollgate_reloads_total{result=\"failed\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("tollgate_decision_seconds"));
    assert!(metrics.contains("tollgate_decisions_total{rule=\"after\",outcome=\"allowed\"}"));
}

/// A request whose body stops arriving is answered 408 (problem+json) once the request
/// timeout has passed, and the server goes on answering others at once.
#[tokio::test]
async fn a_stalled_request_times_out_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s = Server::start_with_env(
        "rules: [{name: r, key: '{user}', limit: 100, period: 1m}]",
        &[("TOLLGATE_SERVER__REQUEST_TIMEOUT", "300ms")],
    );
    assert!(s.alive().await);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Promise 60 bytes, send 12.
    conn.write_all(
        b"POST /v1/check HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Content-Length: 60\r\n\r\n{\"subject\": ",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&answer).contains("\"status\":408") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed without an answer: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(read.is_ok(), "no answer within 10 s: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("/timeout"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Others are served as before.
    let r = check(&s, json!({"subject": {"user": "1"}})).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn health_and_readiness() {
    let s = Server::start("rules: []");
    assert!(s.alive().await);
    assert_eq!(reqwest::get(s.url("/readyz")).await.unwrap().status(), 200);
}

#[test]
fn check_config_prints_every_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "rules: [{name: a, limit: 0, period: 1 mintue}]\nserver: {listen: nowhere}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("server.listen: \"nowhere\" is not an address:port"),
        "{err}"
    );
    assert!(err.contains("rules[0].limit: must be at least 1"), "{err}");
    assert!(
        err.contains("rules[0].period: \"1 mintue\" is not a duration"),
        "{err}"
    );
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "rules: [{name: a, limit: 1, period: 1s}]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn explain_shows_matching_rules_and_keys() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "explain",
            "--subject",
            "user=42",
            "--subject",
            "ip=203.0.113.7",
            "-s",
            "method=post",
            "-s",
            "path=/login",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(r#"rule "per-user" key "user:42": would allow"#),
        "{text}"
    );
    assert!(
        text.contains(r#"rule "login" key "login:203.0.113.7""#),
        "{text}"
    );
    // The embedded per-user rule is 10 a minute with a burst of 5: a bucket of 15 that
    // fills in 90 s.
    assert!(
        text.contains(r#"  ratelimit-policy: "per-user";q=15;w=90, "#),
        "{text}"
    );
}

#[test]
fn explain_adds_a_tiers_limits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("explain")
        .arg("--config")
        .arg(root.join("api-keys.yaml"))
        .args(["-s", "ip=192.0.2.1", "-s", "key=key_1", "--tier", "pro"])
        .env(
            "TOLLGATE_KEY_SECRET",
            "an example secret of at least 32 bytes",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        r#"rule "anonymous" key "ip:192.0.2.1": would allow"#,
        r#"rule "requests" key "key:key_1": would allow (limit 200"#,
        r#"rule "customer" key "owner:owner_example""#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn the_example_configurations_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            seen += 1;
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
                .arg("check-config")
                .arg(&path)
                .env(
                    "TOLLGATE_KEY_SECRET",
                    "an example secret of at least 32 bytes",
                )
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(seen >= 1);
}

/// Each worker thread counts its decisions on its own; a scrape adds them all up, exactly,
/// however the connections were spread, and scraping again changes nothing.
#[tokio::test]
async fn metrics_count_every_decision_of_every_worker() {
    let s = Server::start(
        "rules:\n  - { name: per-user, match: { user: \"*\" }, key: \"user:{user}\", limit: 60, period: 1h }\n",
    );
    assert!(s.alive().await);
    let url = s.url("/v1/check");
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                // A client of its own: a connection of its own.
                let c = reqwest::Client::new();
                for _ in 0..20 {
                    let r = c
                        .post(&url)
                        .json(&json!({"subject": {"user": "m"}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    for _ in 0..2 {
        let metrics = s.metrics().await;
        for line in [
            "tollgate_requests_total{code=\"OK\"} 60\n",
            "tollgate_requests_total{code=\"RATE_LIMITED\"} 100\n",
            "tollgate_decisions_total{rule=\"per-user\",outcome=\"allowed\"} 60\n",
            "tollgate_decisions_total{rule=\"per-user\",outcome=\"denied\"} 100\n",
            "tollgate_decision_seconds_bucket{le=\"+Inf\"} 160\n",
            "tollgate_decision_seconds_count 160\n",
        ] {
            assert!(metrics.contains(line), "{line} missing from\n{metrics}");
        }
    }
}

fn tollgate(
    args: &[&str],
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args)
        .arg(config)
        .env_remove("TOLLGATE_ADMIN_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn messages_name_the_file_the_variable_and_the_list_entry() {
    let dir = tempfile::tempdir().unwrap();
    // A YAML syntax error points into the file by its path.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "rules:\n  - name: a\n    limit: [1\n").unwrap();
    let (ok, _, err) = tollgate(&["check-config"], &broken, &[]);
    assert!(!ok);
    assert!(err.contains(&broken.display().to_string()), "{err}");
    assert!(!err.contains("<input>"), "{err}");

    // A mistyped variable is named, and `serve` says it did not start.
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "server: { listen: \"127.0.0.1:0\", grpc_listen: off }\ndeny:\n  ips: [203.0.113.0/24]\n  users: [mallory]\nrules: [{name: a, key: \"{user}\", limit: 1, period: 1s}]\n",
    )
    .unwrap();
    let typo = [("TOLLGATE_SERVER__LISTN", "127.0.0.1:9")];
    let (ok, _, err) = tollgate(&["serve", "--config"], &good, &typo);
    assert!(!ok);
    assert!(
        err.contains("server.listn: unknown field")
            && err.contains("(set by TOLLGATE_SERVER__LISTN)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "tollgate did not start: 1 error(s) in {}",
            good.display()
        )),
        "{err}"
    );

    // `explain` names the deny list entry that refuses a subject.
    let (ok, out, _) = tollgate(&["explain", "-s", "ip=203.0.113.7", "--config"], &good, &[]);
    assert!(ok);
    assert!(
        out.contains("on the deny list (deny.ips: 203.0.113.0/24)") && out.contains("BLOCKED"),
        "{out}"
    );
    assert!(!out.contains("no rule applies"), "{out}");
    let (_, out, _) = tollgate(&["explain", "-s", "user=mallory", "--config"], &good, &[]);
    assert!(out.contains("deny.users: \"mallory\""), "{out}");
}

#[test]
fn completions_and_manual_pages_are_generated_from_the_command_line() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, bash) = run(&["completions", "bash"]);
    assert!(ok);
    for sub in ["serve", "check-config", "explain", "import", "hash-token"] {
        assert!(
            bash.contains(sub),
            "{sub} missing from the bash completions"
        );
    }
    let (ok, zsh) = run(&["completions", "zsh"]);
    assert!(ok && zsh.contains("#compdef tollgate"), "{zsh}");
    let (ok, page) = run(&["man"]);
    assert!(ok && page.contains(".TH tollgate 1"), "{page}");
    let (ok, serve) = run(&["man", "serve"]);
    assert!(
        ok && serve.contains(".TH tollgate-serve 1") && serve.contains("dev"),
        "{serve}"
    );
    let (ok, _) = run(&["man", "nonsense"]);
    assert!(!ok);
}
