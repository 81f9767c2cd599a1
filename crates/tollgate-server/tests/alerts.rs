//! Alerts on the real binary: rules evaluated by the leader, notices delivered through the
//! job queue to a Standard Webhooks receiver that verifies every signature and to an SMTP
//! server; a receiver that was down gets everything once; the owner is told once per
//! threshold; two instances share the queue and the leadership.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, eventually};
use serde_json::{Value, json};
use tollgate_testkit::python::{Receiver, received_mail, received_webhooks};

const SECRET: &str = "a server secret of at least 32 bytes!!";
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OWNER_SECRET: &str = "whsec_c2VjcmV0IG9mIHRoZSBvd25lciBhY21lIGZvciB0ZXN0cw==";

const TIERS: &str = r#"
rules: []
tiers:
  tiny:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 1, period: 1h }
  pro:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 1000, period: 1h }
"#;

fn start(database: &str, alerts: &str) -> Server {
    Server::start_with_env(
        &format!("database: {database}\n{alerts}\n{TIERS}"),
        &[("TOLLGATE_KEY_SECRET", SECRET)],
    )
}

async fn new_key(c: &reqwest::Client, server: &Server, owner: &str, tier: &str) -> String {
    let r = c
        .post(server.url("/v1/keys"))
        .json(&json!({"name": "k", "owner": owner, "tier": tier}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    key["secret"].as_str().unwrap().to_owned()
}

/// What `GET path` answers, as JSON.
async fn get_json(c: &reqwest::Client, server: &Server, path: &str) -> Value {
    c.get(server.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Whether `/v1/check` admits a request with key `secret`.
async fn check(c: &reqwest::Client, server: &Server, secret: &str) -> bool {
    let r = c
        .post(server.url("/v1/check"))
        .json(&json!({"subject": {"api_key": secret}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let decision: Value = r.json().await.unwrap();
    decision["allowed"].as_bool().unwrap()
}

/// The received webhooks' bodies.
fn bodies(dir: &Path) -> Vec<Value> {
    received_webhooks(dir)
        .iter()
        .map(|r| {
            assert_eq!(r["verified"], true, "a signature did not verify: {r}");
            serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
        })
        .collect()
}

fn ids(dir: &Path) -> Vec<String> {
    received_webhooks(dir)
        .iter()
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn denials_alert_within_two_seconds_then_resolve() {
    let hooks = tempfile::tempdir().unwrap();
    let receiver = Receiver::webhooks(HOOK_SECRET, hooks.path(), 0).unwrap();
    let server = start(
        r#"{ url: "sqlite://alerts.db", flush_interval: 50ms }"#,
        &format!(
            r#"
alerts:
  evaluate_every: 100ms
  channels:
    hook: {{ type: webhook, url: "http://127.0.0.1:{}/hooks", secret: "{HOOK_SECRET}" }}
  rules:
    - {{ name: key-denials, severity: error, denials: {{ per: key, at_least: 3, window: 2s }}, channels: [hook] }}
"#,
            receiver.port
        ),
    );
    let c = reqwest::Client::new();
    let secret = new_key(&c, &server, "acme", "tiny").await;
    assert!(check(&c, &server, &secret).await);
    for _ in 0..3 {
        assert!(!check(&c, &server, &secret).await);
    }
    // The third denial crossed the threshold.
    let crossed = Instant::now();
    let fired = eventually(Duration::from_secs(2), || async {
        bodies(hooks.path())
            .iter()
            .any(|b| b["type"] == "alert.fired")
    })
    .await;
    assert!(
        fired,
        "no alert within 2 s of the threshold: {:?}\n{}",
        received_webhooks(hooks.path()),
        server.log_text()
    );
    let took = crossed.elapsed();
    let first = &bodies(hooks.path())[0];
    assert_eq!(first["data"]["alert"], "key-denials");
    assert_eq!(first["data"]["severity"], "error");
    assert!(first["data"]["subject"].is_null() || first["data"]["subject"].is_string());
    assert!(
        first["data"]["summary"]
            .as_str()
            .unwrap()
            .contains("denied 3 times in the last 2s"),
        "{first}"
    );

    // Two seconds later the window holds no denial: resolved, once.
    let resolved = eventually(Duration::from_secs(10), || async {
        bodies(hooks.path())
            .iter()
            .any(|b| b["type"] == "alert.resolved")
    })
    .await;
    assert!(resolved, "{:?}", received_webhooks(hooks.path()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = ids(hooks.path());
    assert_eq!(got.len(), 2, "fired and resolved, once each: {got:?}");

    let alerts: Value = get_json(&c, &server, "/v1/alerts").await;
    assert_eq!(alerts["firing"], json!([]), "{alerts}");
    let events: Vec<&str> = alerts["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["resolved", "fired"]);
    assert_eq!(alerts["rules"][0]["name"], "key-denials");
    assert_eq!(alerts["rules"][0]["denials"]["at_least"], 3);
    println!("alert delivered {took:?} after its threshold was crossed");
}

#[tokio::test]
async fn a_receiver_down_then_back_gets_every_notice_once() {
    let hooks = tempfile::tempdir().unwrap();
    let port = tollgate_testkit::free_port().unwrap();
    let server = start(
        r#"{ url: "sqlite://alerts.db", flush_interval: 50ms }"#,
        &format!(
            r#"
alerts:
  evaluate_every: 100ms
  delivery: {{ backoff: 100ms, max_backoff: 300ms, max_attempts: 100, timeout: 2s }}
  channels:
    hook: {{ type: webhook, url: "http://127.0.0.1:{port}/hooks", secret: "{HOOK_SECRET}" }}
  rules:
    - {{ name: denied, denials: {{ per: key, at_least: 1, window: 1h }}, channels: [hook] }}
"#
        ),
    );
    let c = reqwest::Client::new();
    for _ in 0..5 {
        let secret = new_key(&c, &server, "acme", "tiny").await;
        check(&c, &server, &secret).await;
        assert!(!check(&c, &server, &secret).await);
    }
    // Five alerts, each delivery failing while nothing listens.
    let failing = eventually(Duration::from_secs(15), || async {
        let jobs: Value = get_json(&c, &server, "/v1/jobs?kind=deliver").await;
        let jobs = jobs["jobs"].as_array().unwrap();
        jobs.len() == 5
            && jobs
                .iter()
                .all(|j| j["attempts"].as_u64().unwrap() >= 2 && j["last_error"].is_string())
    })
    .await;
    assert!(failing, "{}", server.log_text());

    let _receiver = Receiver::webhooks(HOOK_SECRET, hooks.path(), port).unwrap();
    let delivered = eventually(Duration::from_secs(15), || async {
        let jobs: Value = get_json(&c, &server, "/v1/jobs?kind=deliver&state=done").await;
        jobs["jobs"].as_array().unwrap().len() == 5
    })
    .await;
    assert!(delivered, "{}", server.log_text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = ids(hooks.path());
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 5, "every notice once: {got:?}");
    assert_eq!(distinct.len(), 5);
    assert!(
        bodies(hooks.path())
            .iter()
            .all(|b| b["type"] == "alert.fired")
    );
}

#[tokio::test]
async fn the_owner_is_told_once_per_threshold() {
    let hooks = tempfile::tempdir().unwrap();
    let ops = Receiver::webhooks(HOOK_SECRET, hooks.path(), 0).unwrap();
    let owner_hooks = tempfile::tempdir().unwrap();
    let owner_receiver = Receiver::webhooks(OWNER_SECRET, owner_hooks.path(), 0).unwrap();
    let mail = tempfile::tempdir().unwrap();
    let smtp = Receiver::smtp(mail.path(), None).unwrap();
    let server = start(
        r#"{ url: "sqlite://alerts.db", flush_interval: 50ms }"#,
        &format!(
            r#"
billing:
  currency: EUR
  plans:
    pro: {{ base_fee: 4900, included: 10, overage: {{ price: 200, per: 1000 }} }}
alerts:
  evaluate_every: 100ms
  channels:
    ops: {{ type: webhook, url: "http://127.0.0.1:{}/ops", secret: "{HOOK_SECRET}" }}
  outreach:
    email: {{ host: 127.0.0.1, port: {}, tls: none, from: "billing@tollgate.example" }}
    subject: "{{{{ owner.name }}}}: {{{{ percent }}}}% of your units used"
    body: "Hello {{{{ owner.name }}}}, you used {{{{ used }}}} of {{{{ limit }}}} units in {{{{ period }}}}."
  rules:
    - {{ name: included-80, usage: {{ percent: 80 }}, channels: [ops], outreach: true }}
    - {{ name: included-100, usage: {{ percent: 100 }}, severity: critical, channels: [ops], outreach: true }}
"#,
            ops.port, smtp.port
        ),
    );
    let c = reqwest::Client::new();
    let r = c
        .put(server.url("/v1/owners/acme"))
        .json(&json!({
            "name": "Acme",
            "email": "ana@acme.example",
            "webhook_url": format!("http://127.0.0.1:{}/acme", owner_receiver.port),
            "webhook_secret": OWNER_SECRET,
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let secret = new_key(&c, &server, "acme", "pro").await;

    for _ in 0..8 {
        assert!(check(&c, &server, &secret).await);
    }
    let told = eventually(Duration::from_secs(10), || async {
        received_mail(mail.path()).len() == 1 && received_webhooks(owner_hooks.path()).len() == 1
    })
    .await;
    assert!(told, "{}", server.log_text());
    let first = &received_mail(mail.path())[0];
    assert_eq!(first["subject"], "Acme: 80% of your units used");
    assert_eq!(first["rcpt_tos"], json!(["ana@acme.example"]));
    let body = first["body"].as_str().unwrap();
    assert!(body.contains("you used 8 of 10 units in 20"), "{body}");

    for _ in 0..6 {
        assert!(check(&c, &server, &secret).await);
    }
    let told_again = eventually(Duration::from_secs(10), || async {
        received_mail(mail.path()).len() == 2 && received_webhooks(owner_hooks.path()).len() == 2
    })
    .await;
    assert!(told_again, "{}", server.log_text());
    // More use in the same period tells nobody anything new.
    for _ in 0..4 {
        check(&c, &server, &secret).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mails = received_mail(mail.path());
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1]["subject"], "Acme: 100% of your units used");
    let owner_got = bodies(owner_hooks.path());
    assert_eq!(owner_got.len(), 2);
    assert_eq!(owner_got[1]["data"]["alert"], "included-100");
    let ops_got = bodies(hooks.path());
    let alerts: Vec<&str> = ops_got
        .iter()
        .map(|b| b["data"]["alert"].as_str().unwrap())
        .collect();
    assert_eq!(alerts, ["included-80", "included-100"], "{ops_got:?}");
    assert_eq!(ops_got[1]["data"]["severity"], "critical");
}

/// The `tollgate_leader` gauge of `server`: 1 when it leads.
async fn leads(server: &Server) -> bool {
    server
        .metrics()
        .await
        .lines()
        .any(|l| l == "tollgate_leader 1")
}

#[tokio::test]
async fn the_leadership_passes_within_the_lease_when_the_leader_dies() {
    let shared = tempfile::tempdir().unwrap();
    let db = format!(
        r#"{{ url: "sqlite://{}", leader_lease: 2s }}"#,
        shared.path().join("fleet.db").display()
    );
    let mut servers = vec![start(&db, ""), start(&db, "")];
    let one = eventually(Duration::from_secs(10), || async {
        leads(&servers[0]).await != leads(&servers[1]).await
    })
    .await;
    assert!(one, "exactly one leader");
    let at = if leads(&servers[0]).await { 0 } else { 1 };
    let mut leader = servers.remove(at);
    let survivor = servers.remove(0);
    leader.child.kill().unwrap();
    let killed = Instant::now();
    let took_over = eventually(Duration::from_secs(10), || async { leads(&survivor).await }).await;
    assert!(took_over, "{}", survivor.log_text());
    // The lease lapses within its 2 s, and the survivor tries every third of it.
    let took = killed.elapsed();
    assert!(
        took < Duration::from_millis(2_000 + 667 + 1_000),
        "{took:?}"
    );
    println!("the leadership passed {took:?} after the leader died");
}

/// A delivery job as an alert's would be.
fn job(i: usize) -> tollgate_registry::NewJob {
    tollgate_registry::NewJob {
        kind: "deliver".into(),
        payload: json!({
            "target": "channel:hook",
            "notice": {
                "id": format!("alt_race_{i}"), "event": "fired", "alert": "race",
                "dedup_key": format!("race/{i}"), "severity": "info", "summary": format!("job {i}"),
                "body": "", "subject": null, "data": {"i": i}, "at": 1_796_000_000,
            },
        }),
        idempotency_key: format!("race:{i}"),
        max_attempts: 5,
        run_at: 0,
    }
}

/// The deliveries an instance made, from its metrics.
async fn delivered(server: &Server) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .find(|l| l.starts_with("tollgate_deliveries_total{outcome=\"delivered\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn two_instances_deliver_a_thousand_jobs_once_each_on_postgres() {
    let pg = tollgate_testkit::Postgres::start().unwrap();
    let hooks = tempfile::tempdir().unwrap();
    let receiver = Receiver::webhooks(HOOK_SECRET, hooks.path(), 0).unwrap();
    let registry = tollgate_registry::Registry::open(
        &pg.url(),
        tollgate_registry::KeySecret::new(SECRET.as_bytes().to_vec()).unwrap(),
    )
    .await
    .unwrap();
    for i in 0..1_000 {
        assert!(registry.enqueue(&job(i), 0).await.unwrap());
    }
    let alerts = format!(
        r#"
alerts:
  channels:
    hook: {{ type: webhook, url: "http://127.0.0.1:{}/hooks", secret: "{HOOK_SECRET}" }}
"#,
        receiver.port
    );
    let db = format!(r#"{{ url: "{}" }}"#, pg.url());
    let a = start(&db, &alerts);
    let b = start(&db, &alerts);
    let started = Instant::now();
    let done = eventually(Duration::from_secs(60), || async {
        delivered(&a).await + delivered(&b).await >= 1_000
    })
    .await;
    assert!(done, "{}\n{}", a.log_text(), b.log_text());
    println!(
        "two instances delivered 1,000 jobs in {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = ids(hooks.path());
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), 1_000);
    assert_eq!(got.len(), 1_000, "no job delivered twice");
    let (by_a, by_b) = (delivered(&a).await, delivered(&b).await);
    assert_eq!(by_a + by_b, 1_000);
    assert!(
        by_a > 0 && by_b > 0,
        "both instances took jobs: {by_a} and {by_b}"
    );
    let counts = registry.job_counts().await.unwrap();
    let done = counts
        .iter()
        .find(|c| c.state == tollgate_registry::JobState::Done)
        .map_or(0, |c| c.count);
    assert_eq!(done, 1_000, "{counts:?}");
    bodies(hooks.path());
}

/// The alerts of `rule` the receiver in `dir` got, as `fired`/`resolved`.
fn events_of(dir: &Path, rule: &str) -> Vec<String> {
    bodies(dir)
        .iter()
        .filter(|b| b["data"]["alert"] == rule)
        .map(|b| {
            b["type"]
                .as_str()
                .unwrap()
                .trim_start_matches("alert.")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_failing_store_and_a_failing_registry_fire_and_resolve() {
    let mut redis = tollgate_testkit::Single::start().unwrap();
    let pg = tollgate_testkit::Postgres::start().unwrap();
    let hooks = tempfile::tempdir().unwrap();
    let receiver = Receiver::webhooks(HOOK_SECRET, hooks.path(), 0).unwrap();
    let server = Server::start_with_env(
        &format!(
            r#"
store: {{ kind: redis, url: "{}", timeout: 100ms, breaker: {{ failures: 2, cool_down: 100ms }} }}
database: {{ url: "{}" }}
alerts:
  evaluate_every: 100ms
  delivery: {{ timeout: 1s, backoff: 100ms, max_backoff: 300ms }}
  channels:
    hook: {{ type: webhook, url: "http://127.0.0.1:{}/hooks", secret: "{HOOK_SECRET}" }}
  rules:
    - {{ name: store-down, failing: store, severity: critical, channels: [hook] }}
    - {{ name: registry-down, failing: registry, severity: critical, channels: [hook] }}
rules: []
"#,
            redis.url(),
            pg.url(),
            receiver.port
        ),
        &[("TOLLGATE_KEY_SECRET", SECRET)],
    );
    let says = |rule: &'static str, want: &'static [&'static str]| {
        let dir = hooks.path().to_owned();
        async move {
            eventually(Duration::from_secs(20), || {
                let dir = dir.clone();
                async move { events_of(&dir, rule) == want }
            })
            .await
        }
    };
    // Both answer: nothing is said.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(received_webhooks(hooks.path()).is_empty());

    redis.server.kill();
    assert!(
        says("store-down", &["fired"]).await,
        "{}",
        server.log_text()
    );
    redis.server.restart().unwrap();
    assert!(
        says("store-down", &["fired", "resolved"]).await,
        "{}",
        server.log_text()
    );

    // The registry's own failure goes straight to the channels, the queue being in it.
    pg.stop().unwrap();
    assert!(
        says("registry-down", &["fired"]).await,
        "{}",
        server.log_text()
    );
    pg.start_again().unwrap();
    assert!(
        says("registry-down", &["fired", "resolved"]).await,
        "{}",
        server.log_text()
    );
    let b = bodies(hooks.path());
    let fired = b
        .iter()
        .find(|b| b["data"]["alert"] == "registry-down")
        .unwrap();
    assert_eq!(fired["data"]["severity"], "critical");
    assert!(
        fired["data"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("the registry does not answer"),
        "{fired}"
    );
    // The store's alert is in the history; the registry's could not be.
    let c = reqwest::Client::new();
    let alerts: Value = get_json(&c, &server, "/v1/alerts?rule=store-down").await;
    assert_eq!(alerts["events"].as_array().unwrap().len(), 2, "{alerts}");
}

#[tokio::test]
async fn an_objective_missed_burns_its_budget_and_alerts() {
    let hooks = tempfile::tempdir().unwrap();
    let receiver = Receiver::webhooks(HOOK_SECRET, hooks.path(), 0).unwrap();
    let server = start(
        r#"{ url: "sqlite://alerts.db" }"#,
        &format!(
            r#"
slo:
  flush_every: 100ms
  objectives:
    - {{ name: check-up, route: /v1/check, target: 99.9% }}
    # No answer comes within a nanosecond: every request misses this one.
    - {{ name: check-instant, route: /v1/check, latency: 1ns, target: 99% }}
    - {{ name: keys-up, route: /v1/keys*, target: 99% }}
alerts:
  evaluate_every: 100ms
  channels:
    hook: {{ type: webhook, url: "http://127.0.0.1:{}/hooks", secret: "{HOOK_SECRET}" }}
  rules:
    - {{ name: check-instant-burn, slo: check-instant, severity: critical, channels: [hook] }}
    - {{ name: check-up-burn, slo: check-up, channels: [hook] }}
"#,
            receiver.port
        ),
    );
    let c = reqwest::Client::new();
    let secret = new_key(&c, &server, "acme", "pro").await;
    for _ in 0..20 {
        assert!(check(&c, &server, &secret).await);
    }
    let fired = eventually(Duration::from_secs(10), || async {
        events_of(hooks.path(), "check-instant-burn") == ["fired"]
    })
    .await;
    assert!(fired, "{}", server.log_text());
    let b = bodies(hooks.path());
    assert_eq!(b.len(), 1, "the objective met does not alert: {b:?}");
    assert_eq!(b[0]["data"]["severity"], "critical");
    assert!(
        b[0]["data"]["summary"]
            .as_str()
            .unwrap()
            .contains("burns its error budget 100.0 times too fast over 1h"),
        "{}",
        b[0]
    );

    let slo: Value = get_json(&c, &server, "/v1/slo").await;
    let objectives = slo["objectives"].as_array().unwrap();
    let up = &objectives[0];
    assert_eq!(up["name"], "check-up");
    assert_eq!(up["scope"], "fleet");
    assert_eq!(up["total"], 20, "{up}");
    assert_eq!(up["good"], 20);
    assert_eq!(up["error_budget_remaining"], 1.0);
    assert_eq!(up["burning"], json!([]));
    let instant = &objectives[1];
    assert_eq!(instant["kind"], "latency");
    assert_eq!(instant["good"], 0);
    assert_eq!(instant["burn_rates"][0]["window"], "5m");
    assert!((instant["burn_rates"][0]["burn_rate"].as_f64().unwrap() - 100.0).abs() < 1e-6);
    assert_eq!(
        instant["burning"],
        json!(["1h/5m", "6h/30m", "1d/2h", "3d/6h"])
    );
    // The key's creation counted under the prefix.
    assert_eq!(objectives[2]["total"], 1, "{}", objectives[2]);

    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tollgate_slo_requests_total")
                && l.contains("objective=\"check-instant\"")
                && l.contains("outcome=\"bad\"")
                && l.ends_with(" 20")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tollgate_slo_burn_rate") && l.contains("window=\"1h\"")),
        "{metrics}"
    );
}
