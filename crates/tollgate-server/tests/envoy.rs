//! The Envoy rate limit service through real gRPC clients: Python `grpcio` with stubs
//! generated from Envoy's own protos, and tonic. The conformance cases in
//! `tests/envoy/conformance.json` run on three servers holding the same descriptors three
//! ways (inline `envoy:`, `envoy_files:` in envoyproxy/ratelimit's format, and the output
//! of `tollgate import envoy`); all must give the expected answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::panic,
    missing_docs
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Server;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use serde_json::Value;

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/envoy")
}

/// Envoy's protos, as the envoy-types crate ships them (found by the build script).
fn proto_root() -> PathBuf {
    PathBuf::from(env!("ENVOY_PROTO_ROOT"))
}

/// Runs the Python client on `steps` against `grpc`; its answers.
fn python_client(grpc: &str, steps: &Value, stubs: &Path) -> Vec<Value> {
    let python = std::env::var("TOLLGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(here().join("rls_client.py"))
        .arg(proto_root())
        .arg(stubs)
        .arg(grpc)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    serde_json::to_writer(child.stdin.take().unwrap(), steps).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Python client failed (grpcio and grpcio-tools are installed by ./scripts/test):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `CODE`, or `CODE:requests/UNIT:remaining[:name]`, as the cases write answers.
fn brief(status: &Value) -> String {
    let code = status["code"].as_str().unwrap();
    match &status["limit"] {
        Value::Null => code.to_owned(),
        l => {
            let mut s = format!(
                "{code}:{}/{}:{}",
                l["requests_per_unit"],
                l["unit"].as_str().unwrap(),
                status["remaining"]
            );
            if let Some(name) = l["name"].as_str().filter(|n| !n.is_empty()) {
                s.push(':');
                s.push_str(name);
            }
            s
        }
    }
}

/// Waits while the hour (or, near midnight, the day) is about to turn, so no case's windows
/// turn under it.
fn away_from_window_edges() {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if 3600 - now % 3600 > 20 {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn descriptors_yaml() -> String {
    std::fs::read_to_string(here().join("config.yaml")).unwrap()
}

/// The cases' domains as separate envoyproxy/ratelimit files in `dir`.
fn split_files(dir: &Path) -> Vec<PathBuf> {
    let all: Value = serde_saphyr::from_str(&descriptors_yaml()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .map(|domain| {
            let path = dir.join(format!("{}.yaml", domain["domain"].as_str().unwrap()));
            std::fs::write(&path, serde_saphyr::to_string(domain).unwrap()).unwrap();
            path
        })
        .collect()
}

#[test]
fn conformance_cases_through_python_grpcio_three_ways() {
    away_from_window_edges();
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(here().join("conformance.json")).unwrap())
            .unwrap();
    let inline = Server::start(&format!(
        "envoy:\n{}",
        descriptors_yaml()
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    ));

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ratelimit");
    std::fs::create_dir(&folder).unwrap();
    let files = split_files(&folder);
    let cfg = dir.path().join("tollgate.yaml");
    std::fs::write(
        &cfg,
        "server: { listen: \"127.0.0.1:0\" }\nenvoy_files: [\"ratelimit/*.yaml\"]\n",
    )
    .unwrap();
    let from_files = Server::start_at(cfg);

    let imported = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["import", "envoy"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let imported = Server::start(&String::from_utf8(imported.stdout).unwrap());

    let stubs = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (label, server) in [
        ("inline", &inline),
        ("envoy_files", &from_files),
        ("imported", &imported),
    ] {
        let steps: Vec<Value> = cases
            .iter()
            .flat_map(|c| c["steps"].as_array().unwrap().iter().cloned())
            .collect();
        let answers = python_client(
            server.grpc.as_deref().unwrap(),
            &Value::Array(steps),
            stubs.path(),
        );
        let mut answers = answers.into_iter();
        for case in &cases {
            for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
                let answer = answers.next().unwrap();
                let got: Vec<String> = answer["statuses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(brief)
                    .collect();
                let want: Vec<String> = step["expect"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_owned())
                    .collect();
                let overall = if want.iter().any(|w| w.starts_with("OVER_LIMIT")) {
                    "OVER_LIMIT"
                } else {
                    "OK"
                };
                if got != want || answer["overall_code"] != overall {
                    failures.push(format!(
                        "{label}: {} step {i}: got {} {got:?}, expected {overall} {want:?}",
                        case["name"], answer["overall_code"]
                    ));
                }
                // Shadow limits never show in headers.
                if got.iter().any(|g| g.contains('/')) && step["domain"] != "shadow" {
                    let headers = &answer["headers"];
                    if headers["ratelimit"].is_null() || headers["ratelimit-policy"].is_null() {
                        failures.push(format!(
                            "{label}: {} step {i}: no RateLimit headers: {headers}",
                            case["name"]
                        ));
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 3 * 40, "{checked} answers checked");
    // `detailed_metric` counts per full descriptor.
    let metrics = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(inline.metrics());
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tollgate_envoy_descriptor_total")
                && l.contains("descriptor=\"several/user=u\"")
                && l.contains("outcome=\"over_limit\"")),
        "{metrics}"
    );
}

fn request(domain: &str, entries: &[(&str, &str)], hits: u32) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.into(),
        descriptors: vec![RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            ..Default::default()
        }],
        hits_addend: hits,
    }
}

#[tokio::test]
async fn tonic_client_bad_requests_legacy_headers_and_health() {
    away_from_window_edges();
    let server = Server::start_with_env(
        "envoy:\n  - domain: d\n    descriptors:\n      - key: user\n        rate_limit: { unit: hour, requests_per_unit: 2 }\n",
        &[("TOLLGATE_SERVER__GRPC_LEGACY_HEADERS", "true")],
    );
    let addr = format!("http://{}", server.grpc.as_deref().unwrap());
    let mut client = RateLimitServiceClient::connect(addr.clone()).await.unwrap();
    let answer = client
        .should_rate_limit(request("d", &[("user", "1")], 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.overall_code, 1, "{answer:?}");
    let headers: Vec<(&str, &str)> = answer
        .response_headers_to_add
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_str()))
        .collect();
    assert!(headers.contains(&("x-ratelimit-limit", "2")), "{headers:?}");
    assert!(
        headers.contains(&("x-ratelimit-remaining", "1")),
        "{headers:?}"
    );
    assert!(
        headers.iter().any(|(k, _)| *k == "ratelimit-policy"),
        "{headers:?}"
    );

    let empty = client
        .should_rate_limit(request("", &[("user", "1")], 0))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    let none = RateLimitRequest {
        domain: "d".into(),
        ..Default::default()
    };
    let none = client.should_rate_limit(none).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::InvalidArgument);

    // gRPC health checking, as Envoy's cluster health checks ask.
    let channel = tonic::transport::Channel::from_shared(addr)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "envoy.service.ratelimit.v3.RateLimitService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // The decisions are counted in the same metrics as HTTP's.
    let metrics = server.metrics().await;
    assert!(metrics.contains("tollgate_decisions_total"), "{metrics}");
}

#[tokio::test]
async fn store_trouble_answers_by_fail_policy_or_unavailable() {
    // Nothing listens on port 1: the Redis store fails at once.
    let descriptors = "envoy:\n  - domain: d\n    descriptors:\n      - key: user\n        rate_limit: { unit: hour, requests_per_unit: 2 }\n";
    let store = "store: { kind: redis, url: \"redis://127.0.0.1:1\", timeout: 100ms }\n";
    let by_policy = Server::start(&format!("{store}{descriptors}"));
    let mut client =
        RateLimitServiceClient::connect(format!("http://{}", by_policy.grpc.as_deref().unwrap()))
            .await
            .unwrap();
    let answer = client
        .should_rate_limit(request("d", &[("user", "1")], 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.overall_code, 1,
        "fail open (the default on_store_error: allow)"
    );

    let unavailable = Server::start_with_env(
        &format!("{store}{descriptors}"),
        &[("TOLLGATE_SERVER__GRPC_ON_STORE_ERROR", "unavailable")],
    );
    let mut client =
        RateLimitServiceClient::connect(format!("http://{}", unavailable.grpc.as_deref().unwrap()))
            .await
            .unwrap();
    let err = client
        .should_rate_limit(request("d", &[("user", "1")], 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
}

#[test]
fn server_reflection_describes_the_service() {
    let server = Server::start("envoy: []\n");
    let python = std::env::var("TOLLGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(here().join("reflect.py"))
        .arg(server.grpc.as_deref().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the reflection client failed (grpcio-reflection is installed by ./scripts/test):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        services.contains(&"envoy.service.ratelimit.v3.RateLimitService"),
        "{v}"
    );
    assert!(services.contains(&"grpc.health.v1.Health"), "{v}");
    assert_eq!(v["methods"], serde_json::json!(["ShouldRateLimit"]));
    assert_eq!(v["input"], "envoy.service.ratelimit.v3.RateLimitRequest");
}

#[test]
fn envoy_files_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("edge.yaml"),
        "domain: edge\ndescriptors:\n  - key: a\n    rate_limit: { unit: second }\n",
    )
    .unwrap();
    let cfg = dir.path().join("tollgate.yaml");
    std::fs::write(&cfg, "envoy_files: [\"edge.yaml\", \"missing/*.yaml\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("envoy_files[0] (")
            && text.contains("edge.yaml).descriptors[0].rate_limit.requests_per_unit: missing"),
        "{text}"
    );
    assert!(text.contains("envoy_files[1]: cannot list"), "{text}");
}

#[test]
fn import_reports_errors_with_file_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "domain: d\ndescriptors:\n  - key: a\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["import", "envoy"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("bad.yaml: descriptors[0].rate_limit.unit"),
        "{text}"
    );
    // One domain's descriptor defined in two files is refused, as envoyproxy/ratelimit
    // refuses it, naming the second file.
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    let one = "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 1 }\n";
    std::fs::write(&a, one).unwrap();
    std::fs::write(&b, one).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["import", "envoy"])
        .args([&a, &b])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("b.yaml: descriptors[0]") && text.contains("duplicate descriptor"),
        "{text}"
    );
}

/// `server.max_connections` is one budget for both doors: with a limit of 1 and an HTTP
/// connection open, a gRPC call waits until it closes.
#[tokio::test]
async fn the_connection_limit_covers_both_doors() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start_with_env(
        "envoy:\n  - domain: d\n    descriptors:\n      - key: user\n        rate_limit: { unit: hour, requests_per_unit: 100 }\n",
        &[("TOLLGATE_SERVER__MAX_CONNECTIONS", "1")],
    );
    let http: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    // Answered once the start-up probe's connection has closed.
    let mut held = tokio::net::TcpStream::connect(http).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), held.read(&mut buf))
        .await
        .expect("the held connection was never served")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let grpc = format!("http://{}", server.grpc.as_deref().unwrap());
    let call = tokio::spawn(async move {
        let mut client = RateLimitServiceClient::connect(grpc).await?;
        let answer = client
            .should_rate_limit(request("d", &[("user", "1")], 1))
            .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(answer.into_inner().overall_code)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "a gRPC call went past the limit");
    drop(held);
    let code = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the gRPC call was never served")
        .unwrap()
        .unwrap();
    assert_eq!(code, 1, "OK");
}
