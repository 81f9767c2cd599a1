//! `tollgate serve` with a `proxy` section: requests are decided by the engine, then
//! forwarded to a real upstream with the decision's headers on its answer; refusals never
//! reach it; a concurrency lease is held until the answer's body ends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use common::{Server, eventually};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Notify;

/// An upstream that echoes the headers it got (`/echo`), or sends its answer's head and
/// holds the body open until told to finish (`/hold`).
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    release: Arc<Notify>,
}

async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let release = Arc::new(Notify::new());
    let (h, r) = (hits.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (h, r) = (h.clone(), r.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let (h, r) = (h.clone(), r.clone());
                    async move {
                        h.fetch_add(1, Ordering::Relaxed);
                        let body = if req.uri().path() == "/hold" {
                            let (tx, rx) =
                                tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
                            tokio::spawn(async move {
                                tx.send(Ok(Frame::data(Bytes::from_static(b"start "))))
                                    .await
                                    .ok();
                                r.notified().await;
                                tx.send(Ok(Frame::data(Bytes::from_static(b"end"))))
                                    .await
                                    .ok();
                            });
                            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                                rx.recv().await.map(|f| (f, rx))
                            });
                            StreamBody::new(stream).boxed()
                        } else {
                            let headers: serde_json::Map<_, _> = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
                                .collect();
                            Full::new(Bytes::from(serde_json::Value::Object(headers).to_string()))
                                .boxed()
                        };
                        Ok::<_, Infallible>(hyper::Response::new(body))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream {
        addr,
        hits,
        release,
    }
}

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
proxy:
  listen: "127.0.0.1:0"
  routes:
    - {{ upstream: api, remove_headers: [x-api-key] }}
  upstreams:
    api: {{ origins: ["http://{upstream}"] }}
rules:
  - {{ name: per-ip, key: "ip:{{ip}}", match: {{ path: "/echo" }}, algorithm: fixed_window, limit: 2, period: 1h }}
  - {{ name: one-at-a-time, key: "hold:{{ip}}", match: {{ path: "/hold" }}, algorithm: concurrency, limit: 1, lease_ttl: 10m }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_limited_then_forwarded_with_the_decisions_headers() {
    let up = upstream().await;
    let server = Server::start(&config(up.addr));
    let proxy = server.proxy.clone().expect("the proxy's address");
    let http = reqwest::Client::new();
    for remaining in ["1", "0"] {
        let res = http
            .get(format!("{proxy}/echo"))
            .header("x-api-key", "not for the upstream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .contains(&format!("r={remaining}")),
            "{:?}",
            res.headers()
        );
        let seen: serde_json::Value = res.json().await.unwrap();
        assert!(seen.get("x-api-key").is_none(), "{seen}");
        assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    }
    let res = http.get(format!("{proxy}/echo")).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://tollgate.dev/problems/rate-limited"
    );
    assert_eq!(
        up.hits.load(Ordering::Relaxed),
        2,
        "a refusal never reaches the upstream"
    );
    // The proxy's metrics are on the server's.
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tollgate_proxy_requests_total{upstream=\"api\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrency_lease_is_held_until_the_answers_body_ends() {
    let up = upstream().await;
    let server = Server::start(&config(up.addr));
    let proxy = server.proxy.clone().expect("the proxy's address");
    let http = reqwest::Client::new();
    let mut first = http.get(format!("{proxy}/hold")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(&first.chunk().await.unwrap().unwrap()[..], b"start ");
    // The first answer is still streaming: its lease holds the one place.
    let second = http.get(format!("{proxy}/hold")).send().await.unwrap();
    assert_eq!(second.status(), 429);
    up.release.notify_one();
    assert_eq!(&first.chunk().await.unwrap().unwrap()[..], b"end");
    assert!(first.chunk().await.unwrap().is_none());
    // Released when the body ended (on a task of its own): the place comes free.
    let freed = eventually(Duration::from_secs(5), || async {
        let res = http.get(format!("{proxy}/hold")).send().await.unwrap();
        let ok = res.status() == 200;
        if ok {
            up.release.notify_one();
            let _ = res.bytes().await;
        }
        ok
    })
    .await;
    assert!(freed, "the lease was not released");
}

#[test]
fn a_bad_proxy_section_names_its_paths() {
    let (ok, text) = common::check_config(
        "proxy: { routes: [{upstream: nope}], upstreams: {api: {origins: [ftp://x]}} }\n",
    );
    assert!(!ok);
    assert!(text.contains("proxy.routes[0].upstream"), "{text}");
    assert!(text.contains("proxy.upstreams.api.origins[0]"), "{text}");
}

/// An upstream that answers 503 to everything while `down`, and otherwise 200 with the
/// version, headers and body it got, keeping the last request's. It counts the requests
/// that reach it in `arrived`; while `hold` is set, it keeps each answer back until
/// `release` is notified, so that a test can act while a request is in flight.
struct Switchable {
    addr: SocketAddr,
    down: Arc<std::sync::atomic::AtomicBool>,
    last: Arc<std::sync::Mutex<Option<serde_json::Value>>>,
    arrived: Arc<AtomicU64>,
    hold: Arc<std::sync::atomic::AtomicBool>,
    release: Arc<Notify>,
}

async fn switchable() -> Switchable {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let last = Arc::new(std::sync::Mutex::new(None));
    let arrived = Arc::new(AtomicU64::new(0));
    let hold = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let release = Arc::new(Notify::new());
    let shared = (
        down.clone(),
        last.clone(),
        arrived.clone(),
        hold.clone(),
        release.clone(),
    );
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let (d, l, a, h, r) = shared.clone();
                    async move {
                        a.fetch_add(1, Ordering::SeqCst);
                        if h.load(Ordering::SeqCst) {
                            r.notified().await;
                        }
                        if d.load(Ordering::Relaxed) {
                            let mut res = hyper::Response::new(Full::new(Bytes::from("down")));
                            *res.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                            return Ok::<_, Infallible>(res);
                        }
                        let version = format!("{:?}", req.version());
                        let headers: serde_json::Map<_, _> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
                            .collect();
                        let uri = req.uri().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let seen = serde_json::json!({
                            "version": version,
                            "uri": uri,
                            "headers": headers,
                            "body": String::from_utf8_lossy(&body),
                        });
                        *l.lock().unwrap() = Some(seen.clone());
                        Ok(hyper::Response::new(Full::new(Bytes::from(
                            seen.to_string(),
                        ))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Switchable {
        addr,
        down,
        last,
        arrived,
        hold,
        release,
    }
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const SECRET: &str = "a server secret of at least 32 bytes!!";

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_kept_listed_replayed_and_discarded_on_sqlite() {
    dead_letters("{}").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_kept_listed_replayed_and_discarded_on_postgres() {
    let pg = tollgate_testkit::Postgres::start().unwrap();
    dead_letters(&format!("{{ url: \"{}\" }}", pg.url())).await;
}

async fn dead_letters(database: &str) {
    let up = switchable().await;
    let yaml = format!(
        r#"
database: {database}
admin:
  tokens: [{{ name: ro, role: viewer, sha256: "{viewer}" }}]
tiers:
  free: {{ limits: [] }}
proxy:
  listen: "127.0.0.1:0"
  routes:
    - path_prefix: /in
      upstream: api
      remove_headers: [x-internal]
      retry: {{ tries: 2, backoff: 1ms, max_backoff: 2ms, non_idempotent: true }}
      dead_letter: {{ enabled: true, body_limit: 16 }}
  upstreams:
    api: {{ origins: ["http://{addr}"], breaker: {{ failures: 1000, min_requests: 1000 }} }}
rules:
  - {{ name: per-ip, key: "ip:{{ip}}", limit: 1000, period: 1m }}
"#,
        viewer = sha256_hex("viewer-token"),
        addr = up.addr,
    );
    let server = Server::start_with_env(
        &yaml,
        &[
            ("TOLLGATE_KEY_SECRET", SECRET),
            ("TOLLGATE_ADMIN_TOKEN", "admin-token"),
        ],
    );
    let proxy = server.proxy.clone().expect("the proxy's address");
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str, token: &str| {
        http.request(method, server.url(path)).bearer_auth(token)
    };
    // A real API key of this server, presented to the proxy and passed on to the upstream.
    let created: serde_json::Value = admin(reqwest::Method::POST, "/v1/keys", "admin-token")
        .json(&serde_json::json!({"name": "k", "owner": "acme", "tier": "free"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let post = |body: &'static str| {
        http.post(format!("{proxy}/in/orders?x=1"))
            .header("authorization", format!("Bearer {secret}"))
            .header("cookie", "session=1")
            .header("x-internal", "stripped")
            .header("x-trace", "kept")
            .body(body)
            .send()
    };

    // The upstream fails every try: the client gets its answer, the request is kept.
    up.down.store(true, Ordering::Relaxed);
    let res = post("small body").await.unwrap();
    assert_eq!(res.status(), 503);
    let list = |token: &'static str| {
        let req = admin(reqwest::Method::GET, "/v1/dead-letters?route=/in", token);
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let kept = eventually(Duration::from_secs(5), || async {
        list("viewer-token").await["dead_letters"]
            .as_array()
            .is_some_and(|l| l.len() == 1)
    })
    .await;
    assert!(kept, "no dead letter: {}", server.log_text());
    let page = list("viewer-token").await;
    let first = &page["dead_letters"][0];
    assert_eq!(first["route"], "/in");
    assert_eq!(first["upstream"], "api");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["url"], format!("{proxy}/in/orders?x=1"));
    assert_eq!(
        (first["tries"].as_u64(), first["body_size"].as_u64()),
        (Some(2), Some(10))
    );
    assert_eq!(first["body_truncated"], false);
    assert!(
        first["last_failure"].as_str().unwrap().contains("503"),
        "{first}"
    );
    let id = first["id"].as_i64().unwrap();
    let one: serde_json::Value = admin(
        reqwest::Method::GET,
        &format!("/v1/dead-letters/{id}"),
        "viewer-token",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let names: Vec<&str> = one["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    for secret in ["authorization", "cookie", "x-internal"] {
        assert!(!names.contains(&secret), "{secret} kept: {one}");
    }
    assert!(names.contains(&"x-trace"), "{one}");
    assert!(!one.to_string().contains(&secret), "the key is in {one}");
    assert_eq!(one["body_text"], "small body");
    // The same from the command line.
    let table = cli_ok(&server, &["dead-letters", "list", "--route", "/in"]);
    assert!(
        table.starts_with("ID ") && table.contains(&format!("{proxy}/in/orders?x=1")),
        "{table}"
    );
    let shown: serde_json::Value = serde_json::from_str(&cli_ok(
        &server,
        &["dead-letters", "get", &id.to_string(), "--json"],
    ))
    .unwrap();
    assert_eq!(shown["body_text"], "small body");

    // Viewers may look, not replay nor discard.
    let replay = |token: &'static str, id: i64| {
        admin(
            reqwest::Method::POST,
            &format!("/v1/dead-letters/{id}/replay"),
            token,
        )
        .send()
    };
    assert_eq!(replay("viewer-token", id).await.unwrap().status(), 403);
    // Replayed (from the command line) while the upstream still fails: the new tries are
    // recorded, it stays, and the command says so by its exit code.
    let out = cli(
        &server,
        &["dead-letters", "replay", &id.to_string(), "--json"],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["delivered"], false, "{outcome}");
    assert_eq!(outcome["status"], 503);
    assert_eq!(outcome["dead_letter"]["tries"], 4);
    assert_eq!(outcome["dead_letter"]["replays"], 1);
    // The failed replay released its claim.
    assert!(
        outcome["dead_letter"]["replaying_since"].is_null(),
        "{outcome}"
    );
    // Healed, and two replays at once: the first claims it and is held at the upstream;
    // the second, sent while the first is in flight, is refused and sends nothing.
    up.down.store(false, Ordering::Relaxed);
    up.hold.store(true, Ordering::SeqCst);
    let before = up.arrived.load(Ordering::SeqCst);
    let first = async { replay("admin-token", id).await.unwrap() };
    let second = async {
        let in_flight = eventually(Duration::from_secs(10), || async {
            up.arrived.load(Ordering::SeqCst) > before
        })
        .await;
        assert!(in_flight, "the first replay never reached the upstream");
        let res = replay("admin-token", id).await.unwrap();
        let status = res.status();
        let problem: serde_json::Value = res.json().await.unwrap();
        // While it is held, the dead letter shows the claim.
        let held: serde_json::Value = admin(
            reqwest::Method::GET,
            &format!("/v1/dead-letters/{id}"),
            "viewer-token",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        up.hold.store(false, Ordering::SeqCst);
        up.release.notify_one();
        (status, problem, held)
    };
    let (first, (status, problem, held)) = tokio::join!(first, second);
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        problem["type"],
        "https://tollgate.dev/problems/dead-letter-replaying"
    );
    assert!(held["replaying_since"].is_i64(), "{held}");
    assert_eq!(first.status(), 200);
    let outcome: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        (outcome["delivered"].as_bool(), outcome["status"].as_u64()),
        (Some(true), Some(200)),
        "{outcome}"
    );
    assert_eq!(
        up.arrived.load(Ordering::SeqCst),
        before + 1,
        "the dead letter was sent more than once"
    );
    let seen = up.last.lock().unwrap().clone().unwrap();
    assert_eq!(seen["uri"], "/in/orders?x=1");
    assert_eq!(seen["body"], "small body");
    assert_eq!(seen["headers"]["x-trace"], "kept");
    assert!(seen["headers"]["authorization"].is_null(), "{seen}");
    let gone = admin(
        reqwest::Method::GET,
        &format!("/v1/dead-letters/{id}"),
        "viewer-token",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(gone.status(), 404);

    // A body over the limit is kept cut, and its replay is refused with the reason.
    up.down.store(true, Ordering::Relaxed);
    let res = post("a body well over sixteen bytes").await.unwrap();
    assert_eq!(res.status(), 503);
    let kept = eventually(Duration::from_secs(5), || async {
        list("viewer-token").await["dead_letters"]
            .as_array()
            .is_some_and(|l| l.len() == 1)
    })
    .await;
    assert!(kept, "no dead letter: {}", server.log_text());
    let cut = list("viewer-token").await["dead_letters"][0].clone();
    assert_eq!(
        (cut["body_truncated"].as_bool(), cut["body_size"].as_u64()),
        (Some(true), Some(16))
    );
    let id = cut["id"].as_i64().unwrap();
    let res = replay("admin-token", id).await.unwrap();
    assert_eq!(res.status(), 409);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://tollgate.dev/problems/dead-letter-truncated"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("body_limit"),
        "{problem}"
    );

    // Discarded by an admin, once.
    let discard = |token: &'static str| {
        admin(
            reqwest::Method::DELETE,
            &format!("/v1/dead-letters/{id}"),
            token,
        )
        .send()
    };
    assert_eq!(discard("viewer-token").await.unwrap().status(), 403);
    let out = cli(&server, &["dead-letters", "replay", &id.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("body_limit"),
        "{out:?}"
    );
    assert_eq!(
        cli_ok(&server, &["dead-letters", "discard", &id.to_string()]),
        format!("discarded {id}\n")
    );
    assert_eq!(discard("admin-token").await.unwrap().status(), 404);
    assert_eq!(
        list("viewer-token").await["dead_letters"],
        serde_json::json!([])
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tollgate_proxy_dead_letters_total 2"),
        "{metrics}"
    );
}

/// Runs `tollgate ARGS` as the admin against `server`.
fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_URL", &server.base)
        .env("TOLLGATE_ADMIN_TOKEN", "admin-token")
        .output()
        .unwrap()
}

/// [`cli`], which must succeed: its standard output.
fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = cli(server, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_route_keeping_dead_letters_needs_a_database() {
    let (ok, text) = common::check_config(
        "proxy: { routes: [{upstream: api, dead_letter: {enabled: true}}], upstreams: {api: {origins: ['http://127.0.0.1:1']}} }\n",
    );
    assert!(!ok);
    assert!(text.contains("proxy.routes[0].dead_letter"), "{text}");
}

fn plain_config(upstream: SocketAddr, tls: &str) -> String {
    format!(
        r#"
proxy:
  listen: "127.0.0.1:0"
  {tls}
  routes: [{{ upstream: api }}]
  upstreams:
    api: {{ origins: ["http://{upstream}"] }}
rules:
  - {{ name: per-ip, key: "ip:{{ip}}", limit: 100000, period: 1m }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plain_listener_serves_http2_with_prior_knowledge() {
    let up = upstream().await;
    // HTTP/2 names the host in `:authority`: the decision reads it there.
    let by_host = "  - { name: one-per-host, key: \"host:{attr.host}\", match: { attr.host: \"127.0.0.1\" }, algorithm: fixed_window, limit: 1, period: 1h }\n";
    let server = Server::start(&(plain_config(up.addr, "") + by_host));
    let proxy = server.proxy.clone().expect("the proxy's address");
    let h2c: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let res = h2c
        .request(
            hyper::Request::get(format!("{proxy}/echo"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().contains_key("ratelimit"),
        "{:?}",
        res.headers()
    );
    let headers: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(up.hits.load(Ordering::Relaxed), 1);
    let again = h2c
        .request(
            hyper::Request::get(format!("{proxy}/echo"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(again.status(), 429);
    assert_eq!(up.hits.load(Ordering::Relaxed), 1);
}

/// What one request over TLS to `port` got: the protocol agreed by ALPN, the certificate
/// the server presented, the status and the body.
async fn over_tls(
    port: u16,
    roots: &[&std::path::Path],
    alpn: &[u8],
) -> (Vec<u8>, Vec<u8>, u16, serde_json::Value) {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    for ca in roots {
        store
            .add(CertificateDer::from_pem_file(ca).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (_, session) = tls.get_ref();
    let agreed = session.alpn_protocol().unwrap_or_default().to_vec();
    let presented = session.peer_certificates().unwrap()[0].to_vec();
    let req = hyper::Request::get(format!("https://localhost:{port}/echo"))
        .header("host", format!("localhost:{port}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let io = TokioIo::new(tls);
    let res = if alpn == b"h2" {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = req;
        req.headers_mut().remove("host");
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (
        agreed,
        presented,
        status,
        serde_json::from_slice(&body).unwrap_or_default(),
    )
}

/// The DER of the first certificate of the PEM file `path`.
fn der(path: &std::path::Path) -> Vec<u8> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

/// Replaces `to` with `from` at once, as a deployment tool would (write, then rename).
fn swap_in(from: &std::path::Path, to: &std::path::Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tls_listener_speaks_both_protocols_and_takes_a_new_certificate_when_its_files_change()
{
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let live = dir.path().join("live");
    for d in [&a, &b, &live] {
        std::fs::create_dir(d).unwrap();
    }
    let first = tollgate_testkit::certificates(&a).unwrap();
    let second = tollgate_testkit::certificates(&b).unwrap();
    let (cert, key) = (live.join("cert.pem"), live.join("key.pem"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let tls = format!(
        "tls: {{ cert_file: \"{}\", key_file: \"{}\" }}",
        cert.display(),
        key.display()
    );
    let server = Server::start(&plain_config(up.addr, &tls));
    let proxy = server.proxy.clone().expect("the proxy's address");
    assert!(proxy.starts_with("https://"), "{proxy}");
    let port: u16 = proxy.rsplit(':').next().unwrap().parse().unwrap();
    let roots = [first.ca.as_path(), second.ca.as_path()];

    for alpn in [&b"http/1.1"[..], b"h2"] {
        let (agreed, presented, status, echo) = over_tls(port, &roots, alpn).await;
        assert_eq!(agreed, alpn);
        assert_eq!(presented, der(&first.cert));
        assert_eq!(status, 200, "{echo}");
        assert_eq!(echo["x-forwarded-proto"], "https");
    }

    // A new certificate and key put in place: new handshakes get it.
    swap_in(&second.key, &key);
    swap_in(&second.cert, &cert);
    let renewed = eventually(Duration::from_secs(10), || async {
        over_tls(port, &roots, b"h2").await.1 == der(&second.cert)
    })
    .await;
    assert!(
        renewed,
        "the certificate was not reloaded: {}",
        server.log_text()
    );

    // A broken file is refused, and the certificate in use stays. (A swap caught half
    // done is refused too, so refusals are counted from here.)
    let refusals = || server.log_text().matches("was not reloaded").count();
    let before = refusals();
    std::fs::write(live.join("cert.tmp"), "not a certificate").unwrap();
    std::fs::rename(live.join("cert.tmp"), &cert).unwrap();
    let refused = eventually(Duration::from_secs(10), || async { refusals() > before }).await;
    assert!(refused, "{}", server.log_text());
    let (_, presented, status, _) = over_tls(port, &roots, b"http/1.1").await;
    assert_eq!((presented, status), (der(&second.cert), 200));
}

#[test]
fn a_missing_certificate_file_is_a_config_error_at_its_path() {
    let (ok, text) = common::check_config(
        "proxy: { tls: { cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem }, routes: [{upstream: api}], upstreams: {api: {origins: ['http://127.0.0.1:1']}} }\n",
    );
    assert!(!ok);
    assert!(text.contains("proxy.tls.cert_file"), "{text}");
}
