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
