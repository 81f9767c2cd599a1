//! Traces on the real binary, exported to an OTLP receiver built on the OpenTelemetry
//! protos: a span per door with the caller's parent, the decision and the store beneath
//! it, parent-based sampling, OTLP over gRPC and over HTTP, the trace id on log lines, and
//! the proxy's upstream made a child of its span.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Server, eventually};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use serde_json::{Value, json};
use tollgate_testkit::python::{Receiver, received_spans};

const POLICY: &str = r#"
rules:
  - { name: per-user, key: "user:{user}", match: { user: "*" }, limit: 100, period: 1m }
envoy:
  - domain: d
    descriptors:
      - key: user
        rate_limit: { unit: minute, requests_per_unit: 100 }
"#;

/// A `traceparent` of trace `t` (one hex digit, repeated) from parent span `p`, sampled or
/// not.
fn traceparent(t: char, p: char, sampled: bool) -> (String, String, String) {
    let trace: String = std::iter::repeat_n(t, 32).collect();
    let parent: String = std::iter::repeat_n(p, 16).collect();
    let flags = if sampled { "01" } else { "00" };
    (format!("00-{trace}-{parent}-{flags}"), trace, parent)
}

fn start(telemetry: &str, extra: &str) -> Server {
    Server::start_with_env(
        &format!("telemetry: {telemetry}\n{extra}{POLICY}"),
        &[
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("TOLLGATE_ADMIN_TOKEN", "t0ken"),
        ],
    )
}

async fn check(c: &reqwest::Client, server: &Server, traceparent: Option<&str>) {
    let mut req = c
        .post(server.url("/v1/check"))
        .json(&json!({"subject": {"user": "ana"}}));
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
}

/// The spans of trace `trace` received so far.
fn of_trace(dir: &Path, trace: &str) -> Vec<Value> {
    received_spans(dir)
        .into_iter()
        .filter(|s| s["trace_id"] == trace)
        .collect()
}

fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
}

#[tokio::test]
async fn spans_over_grpc_follow_the_callers_trace_on_every_door() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, _) = Receiver::otlp(dir.path()).unwrap();
    let server = start(
        &format!(
            "{{ endpoint: \"http://127.0.0.1:{}\", sample_ratio: 0, service_name: edge }}",
            receiver.port
        ),
        "",
    );
    let c = reqwest::Client::new();

    // A sampled caller: the door's span is its child, the decision and the store below.
    let (tp, trace, parent) = traceparent('a', 'b', true);
    check(&c, &server, Some(&tp)).await;
    let arrived = eventually(Duration::from_secs(10), || async {
        of_trace(dir.path(), &trace).len() >= 3
    })
    .await;
    assert!(
        arrived,
        "{:?}\n{}",
        received_spans(dir.path()),
        server.log_text()
    );
    let spans = of_trace(dir.path(), &trace);
    let door = named(&spans, "POST /v1/check");
    assert_eq!(door["parent_span_id"], parent);
    assert_eq!(door["kind"], 2, "a server span");
    assert_eq!(door["service"], "edge");
    assert_eq!(door["attributes"]["tollgate.store"], "memory");
    assert_eq!(door["attributes"]["http.response.status_code"], 200);
    let decision = named(&spans, "decision");
    assert_eq!(decision["parent_span_id"], door["span_id"]);
    assert_eq!(decision["attributes"]["tollgate.outcome"], "OK");
    assert_eq!(decision["attributes"]["tollgate.allowed"], true);
    assert_eq!(decision["attributes"]["tollgate.rules"], "per-user");
    assert_eq!(decision["attributes"]["tollgate.degraded"], false);
    let store = named(&spans, "store.acquire");
    assert_eq!(store["parent_span_id"], decision["span_id"]);

    // Parent-based sampling at a ratio of 0: a caller that did not sample, and one with no
    // trace, are not traced.
    let (unsampled, unsampled_trace, _) = traceparent('c', 'd', false);
    check(&c, &server, Some(&unsampled)).await;
    check(&c, &server, None).await;

    // The gRPC door reads the trace context from the call's metadata.
    let (tp, grpc_trace, grpc_parent) = traceparent('e', 'f', true);
    let mut client =
        RateLimitServiceClient::connect(format!("http://{}", server.grpc.as_deref().unwrap()))
            .await
            .unwrap();
    let mut call = tonic::Request::new(RateLimitRequest {
        domain: "d".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "user".into(),
                value: "ana".into(),
            }],
            ..Default::default()
        }],
        hits_addend: 1,
    });
    call.metadata_mut()
        .insert("traceparent", tp.parse().unwrap());
    client.should_rate_limit(call).await.unwrap();

    // A route behind the router: its request span is exported and its trace id is on the
    // log lines written within it.
    let (tp, admin_trace, _) = traceparent('1', '2', true);
    let r = c
        .delete(server.url("/v1/counters/user:ana"))
        .bearer_auth("t0ken")
        .header("traceparent", &tp)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let arrived = eventually(Duration::from_secs(10), || async {
        !of_trace(dir.path(), &grpc_trace).is_empty()
            && !of_trace(dir.path(), &admin_trace).is_empty()
    })
    .await;
    assert!(arrived, "{:?}", received_spans(dir.path()));
    let grpc = of_trace(dir.path(), &grpc_trace);
    let door = named(
        &grpc,
        "envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
    );
    assert_eq!(door["parent_span_id"], grpc_parent);
    assert_eq!(door["attributes"]["tollgate.domain"], "d");
    assert_eq!(named(&grpc, "decision")["parent_span_id"], door["span_id"]);
    let admin = of_trace(dir.path(), &admin_trace);
    named(&admin, "DELETE /v1/counters/user:ana");
    let logged = eventually(Duration::from_secs(5), || async {
        server
            .log_text()
            .lines()
            .any(|l| l.contains("counter reset") && l.contains(&admin_trace))
    })
    .await;
    assert!(logged, "{}", server.log_text());

    // Everything sampled has arrived by now; the unsampled never does.
    assert!(of_trace(dir.path(), &unsampled_trace).is_empty());
    let traces: std::collections::BTreeSet<String> = received_spans(dir.path())
        .iter()
        .map(|s| s["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(traces.len(), 3, "{traces:?}");
}

/// An upstream answering with the headers it got, as JSON.
async fn echo() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        let seen: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
            .collect();
        axum::Json(Value::Object(seen))
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn spans_over_http_and_the_upstream_a_child_of_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let (_receiver, http_port) = Receiver::otlp(dir.path()).unwrap();
    let origin = echo().await;
    let server = start(
        &format!(
            "{{ endpoint: \"http://127.0.0.1:{http_port}\", protocol: http/protobuf, sample_ratio: 1 }}"
        ),
        &format!(
            "proxy: {{ listen: \"127.0.0.1:0\", routes: [{{ upstream: api }}], upstreams: {{ api: {{ origins: [\"http://{origin}\"] }} }} }}\n"
        ),
    );
    let c = reqwest::Client::new();
    let (tp, trace, parent) = traceparent('7', '8', true);
    let seen: Value = c
        .get(format!("{}/hello", server.proxy.as_deref().unwrap()))
        .header("traceparent", &tp)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let arrived = eventually(Duration::from_secs(10), || async {
        of_trace(dir.path(), &trace).len() >= 3
    })
    .await;
    assert!(
        arrived,
        "{:?}\n{}",
        received_spans(dir.path()),
        server.log_text()
    );
    let spans = of_trace(dir.path(), &trace);
    assert!(spans.iter().all(|s| s["protocol"] == "http"));
    let door = named(&spans, "proxy GET");
    assert_eq!(door["parent_span_id"], parent);
    let upstream = named(&spans, "proxy upstream");
    assert_eq!(upstream["parent_span_id"], door["span_id"]);
    assert_eq!(upstream["kind"], 3, "a client span");
    assert_eq!(upstream["attributes"]["http.response.status_code"], 200);
    // The upstream got the trace with the upstream span as its parent.
    let forwarded = seen["traceparent"].as_str().unwrap();
    let upstream_id = upstream["span_id"].as_str().unwrap();
    assert_eq!(forwarded, format!("00-{trace}-{upstream_id}-01"), "{seen}");
    // Sampled at 1: a request without a trace starts one.
    check(&c, &server, None).await;
    let started = eventually(Duration::from_secs(10), || async {
        received_spans(dir.path())
            .iter()
            .any(|s| s["name"] == "POST /v1/check" && s["parent_span_id"] == "")
    })
    .await;
    assert!(started, "{:?}", received_spans(dir.path()));
}

#[tokio::test]
async fn an_alert_delivery_is_a_trace_of_its_own() {
    const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let dir = tempfile::tempdir().unwrap();
    let hooks = tempfile::tempdir().unwrap();
    let (otlp, _) = Receiver::otlp(dir.path()).unwrap();
    let webhooks = Receiver::webhooks(HOOK_SECRET, hooks.path(), 0).unwrap();
    let server = Server::start_with_env(
        &format!(
            r#"telemetry: {{ endpoint: "http://127.0.0.1:{}", sample_ratio: 1 }}
database: {{ url: "sqlite://traces.db", flush_interval: 50ms }}
alerts:
  evaluate_every: 100ms
  channels:
    hook: {{ type: webhook, url: "http://127.0.0.1:{}/hooks", secret: "{HOOK_SECRET}" }}
  rules:
    - {{ name: denials, denials: {{ per: rule, at_least: 1, window: 1m }}, channels: [hook] }}
{POLICY}"#,
            otlp.port, webhooks.port
        ),
        &[
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            (
                "TOLLGATE_KEY_SECRET",
                "a server secret of at least 32 bytes!!",
            ),
        ],
    );
    let c = reqwest::Client::new();
    // Past the per-user limit of 100 a minute: denied, which fires the alert.
    for _ in 0..101 {
        check(&c, &server, None).await;
    }
    let delivered = eventually(Duration::from_secs(10), || async {
        received_spans(dir.path())
            .iter()
            .any(|s| s["name"] == "alert delivery")
    })
    .await;
    assert!(
        delivered,
        "{:?}\n{}",
        received_spans(dir.path()),
        server.log_text()
    );
    let spans = received_spans(dir.path());
    let delivery = named(&spans, "alert delivery");
    assert_eq!(delivery["parent_span_id"], "", "a root: {delivery}");
    assert_eq!(delivery["kind"], 3, "a client span");
    assert!(
        delivery["attributes"]["tollgate.job"].is_string(),
        "{delivery}"
    );
    assert_eq!(
        delivery["attributes"]["tollgate.attempt"], 1,
        "the first try"
    );
}

#[tokio::test]
async fn the_section_is_checked() {
    let (ok, out) = common::check_config(
        "telemetry: { endpoint: \"collector:4317\", sample_ratio: 3 }\nrules: []\n",
    );
    assert!(!ok);
    assert!(out.contains("telemetry.endpoint"), "{out}");
    assert!(out.contains("telemetry.sample_ratio"), "{out}");
}
