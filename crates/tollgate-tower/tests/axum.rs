//! The layer in front of a real axum server, driven by a real HTTP client over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http_body::Frame;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tollgate_tower::{TollgateLayer, TollgateUser};

use common::{client_from, engine, serve};

fn app(layer: TollgateLayer<tollgate_core::MemoryStore>) -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/items/{id}", get(|| async { "item" }))
        .layer(layer)
}

async fn get_status(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn allowed_until_the_limit_then_refused_with_headers_and_a_problem() {
    let engine = engine("rules: [{name: per-ip, key: 'ip:{ip}', limit: 2, period: 1h}]");
    let addr = serve(app(TollgateLayer::new(engine))).await;
    let client = client_from("127.0.0.1");
    let url = format!("http://{addr}/");

    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let h = first.headers();
    assert_eq!(h["ratelimit-policy"], "\"per-ip\";q=2;w=3600");
    assert_eq!(h["ratelimit"], "\"per-ip\";r=1;t=1800");
    assert_eq!(h["x-ratelimit-limit"], "2");
    assert_eq!(h["x-ratelimit-remaining"], "1");
    assert!(!h.contains_key("retry-after"));
    assert_eq!(first.text().await.unwrap(), "hello");

    let second = client.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["ratelimit"], "\"per-ip\";r=0;t=3600");

    let third = client.get(&url).send().await.unwrap();
    assert_eq!(third.status(), 429);
    let h = third.headers();
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(h["retry-after"], "1800");
    assert_eq!(h["ratelimit"], "\"per-ip\";r=0;t=1800");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let body: Value = third.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "https://tollgate.dev/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "limit \"per-ip\" exceeded",
        })
    );
}

#[tokio::test]
async fn each_client_address_has_its_own_counter() {
    let engine = engine("rules: [{name: per-ip, key: 'ip:{ip}', limit: 1, period: 1h}]");
    let addr = serve(app(TollgateLayer::new(engine))).await;
    let url = format!("http://{addr}/");
    let (a, b) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    assert_eq!(get_status(&a, &url).await, 200);
    assert_eq!(get_status(&a, &url).await, 429);
    assert_eq!(get_status(&b, &url).await, 200);
    assert_eq!(get_status(&b, &url).await, 429);
}

/// Sets the user from `x-user`, as an application's authentication would.
async fn authenticate(mut req: Request, next: Next) -> Response {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        let user = TollgateUser(user.to_owned());
        req.extensions_mut().insert(user);
    }
    next.run(req).await
}

#[tokio::test]
async fn each_user_has_their_own_counter_from_the_extension_or_a_closure() {
    let yaml = "rules: [{name: per-user, key: 'user:{user}', limit: 1, period: 1h}]";
    // Layers added later run first: authentication, then Tollgate.
    let by_extension =
        app(TollgateLayer::new(engine(yaml))).layer(middleware::from_fn(authenticate));
    let closure = TollgateLayer::builder(engine(yaml))
        .user_with(|parts| {
            let v = parts.headers.get("x-user")?.to_str().ok()?;
            Some(v.to_owned())
        })
        .build()
        .unwrap();
    for router in [by_extension, app(closure)] {
        let addr = serve(router).await;
        let url = format!("http://{addr}/");
        let client = client_from("127.0.0.1");
        let as_user = |user: &'static str| client.get(&url).header("x-user", user).send();
        assert_eq!(as_user("alice").await.unwrap().status(), 200);
        assert_eq!(as_user("alice").await.unwrap().status(), 429);
        assert_eq!(as_user("bob").await.unwrap().status(), 200);
        // No user: the rule, keyed on one, does not apply.
        assert_eq!(get_status(&client, &url).await, 200);
        assert_eq!(get_status(&client, &url).await, 200);
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    let yaml = "rules: [{name: per-ip, key: 'ip:{ip}', limit: 1, period: 1h}]";
    let behind_proxy = TollgateLayer::builder(engine(yaml))
        .trusted_proxies(["127.0.0.1/32"])
        .build()
        .unwrap();
    let addr = serve(app(behind_proxy)).await;
    let url = format!("http://{addr}/");
    let proxy = client_from("127.0.0.1");
    let from = |xff: &'static str| proxy.get(&url).header("x-forwarded-for", xff).send();
    assert_eq!(from("203.0.113.5").await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.5").await.unwrap().status(), 429);
    assert_eq!(from("203.0.113.6").await.unwrap().status(), 200);
    // The client's own hops, left of the one the proxy appended, change nothing.
    assert_eq!(
        from("198.51.100.1, 203.0.113.7").await.unwrap().status(),
        200
    );
    assert_eq!(
        from("198.51.100.2, 203.0.113.7").await.unwrap().status(),
        429
    );
    // A proxy that appends a line of its own.
    let two_lines = proxy
        .get(&url)
        .header("x-forwarded-for", "198.51.100.3")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(two_lines.status(), 429);

    // From a peer that is no trusted proxy, the header is ignored: every request counts
    // against the peer's own address.
    let elsewhere = TollgateLayer::builder(engine(yaml))
        .trusted_proxies(["10.0.0.0/8"])
        .build()
        .unwrap();
    let addr = serve(app(elsewhere)).await;
    let url = format!("http://{addr}/");
    let from = |xff: &'static str| proxy.get(&url).header("x-forwarded-for", xff).send();
    assert_eq!(from("203.0.113.5").await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.6").await.unwrap().status(), 429);
    assert_eq!(get_status(&proxy, &url).await, 429);
}

#[tokio::test]
async fn api_keys_path_method_host_and_headers_reach_the_policy() {
    let engine = engine(
        r#"
rules:
  - {name: per-key, key: '{key}', limit: 1, period: 1h}
  - {name: items, match: {method: DELETE, path: '/items/*'}, limit: 1, period: 1h}
  - {name: per-host-tenant, key: '{attr.host}/{tenant}', limit: 1, period: 1h}
"#,
    );
    let layer = TollgateLayer::builder(engine)
        .host("attr.host")
        .header("x-tenant", "tenant")
        .build()
        .unwrap();
    let router = Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/items/{id}",
            get(|| async { "item" }).delete(|| async { "gone" }),
        )
        .layer(layer);
    let addr = serve(router).await;
    let client = client_from("127.0.0.1");
    let url = format!("http://{addr}/");
    let key = |k: &'static str| client.get(&url).header("x-api-key", k).send();
    assert_eq!(key("tg_a").await.unwrap().status(), 200);
    assert_eq!(key("tg_a").await.unwrap().status(), 429);
    assert_eq!(key("tg_b").await.unwrap().status(), 200);
    let bearer = client.get(&url).bearer_auth("tg_a").send().await.unwrap();
    assert_eq!(bearer.status(), 429);

    let item = |n: u32| format!("http://{addr}/items/{n}");
    assert_eq!(client.delete(item(1)).send().await.unwrap().status(), 200);
    assert_eq!(client.delete(item(2)).send().await.unwrap().status(), 429);
    assert_eq!(client.get(item(2)).send().await.unwrap().status(), 200);

    let tenant = |t: &'static str, host: &'static str| {
        client
            .get(&url)
            .header("x-tenant", t)
            .header("host", host)
            .send()
    };
    assert_eq!(tenant("acme", "a.test:80").await.unwrap().status(), 200);
    assert_eq!(tenant("acme", "a.test").await.unwrap().status(), 429);
    assert_eq!(tenant("acme", "b.test").await.unwrap().status(), 200);
    assert_eq!(tenant("globex", "a.test").await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_blocked_client_gets_403_and_a_bad_attribute_400() {
    let engine = engine(
        "rules: [{name: r, key: 'ip:{ip}', limit: 10, period: 1h}]\ndeny: {ips: ['127.0.0.2']}",
    );
    let layer = TollgateLayer::builder(engine)
        .header("x-account", "attr.account")
        .build()
        .unwrap();
    let addr = serve(app(layer)).await;
    let url = format!("http://{addr}/");
    let blocked = client_from("127.0.0.2").get(&url).send().await.unwrap();
    assert_eq!(blocked.status(), 403);
    let body: Value = blocked.json().await.unwrap();
    assert_eq!(body["type"], "https://tollgate.dev/problems/blocked");
    assert_eq!(body["status"], 403);

    let long = "x".repeat(2000);
    let bad = client_from("127.0.0.1")
        .get(&url)
        .header("x-account", long)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://tollgate.dev/problems/invalid-subject"
    );
}

#[test]
fn a_bad_configuration_is_refused_at_build() {
    let engine = engine("rules: []");
    let e = TollgateLayer::builder(engine.clone())
        .trusted_proxies(["10.0.0.0/33"])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
    let e = TollgateLayer::builder(engine)
        .header("x-a", "nonsense")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("nonsense"), "{e}");
}

/// A response body the test feeds chunk by chunk; it says when it is dropped.
struct Fed {
    chunks: mpsc::Receiver<Bytes>,
    dropped: Option<oneshot::Sender<()>>,
}

impl http_body::Body for Fed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.chunks
            .poll_recv(cx)
            .map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

impl Drop for Fed {
    fn drop(&mut self) {
        if let Some(tx) = self.dropped.take() {
            let _ = tx.send(());
        }
    }
}

/// The handle of one streaming answer: its chunks' sender, and word of its body's drop.
type Stream = (mpsc::Sender<Bytes>, oneshot::Receiver<()>);

async fn streaming(State(streams): State<mpsc::UnboundedSender<Stream>>) -> Response {
    let (tx, chunks) = mpsc::channel(4);
    let (dropped, on_drop) = oneshot::channel();
    streams.send((tx, on_drop)).unwrap();
    Response::new(Body::new(Fed {
        chunks,
        dropped: Some(dropped),
    }))
}

#[tokio::test]
async fn a_concurrency_lease_is_held_while_the_body_streams_and_released_when_it_ends() {
    let engine =
        engine("rules: [{name: one-at-a-time, algorithm: concurrency, limit: 1, lease_ttl: 1h}]");
    let (streams, mut opened) = mpsc::unbounded_channel::<Stream>();
    let router = Router::new()
        .route("/stream", get(streaming))
        .with_state(streams)
        .layer(TollgateLayer::new(engine));
    let addr = serve(router).await;
    let url = format!("http://{addr}/stream");
    let client = client_from("127.0.0.1");
    let bound = Duration::from_secs(10);

    // The first request is admitted; its body is still streaming.
    let mut first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let (tx, _) = opened.recv().await.unwrap();
    tx.send(Bytes::from_static(b"part one ")).await.unwrap();
    assert_eq!(first.chunk().await.unwrap().unwrap(), "part one ");

    // While it streams, a second is refused.
    let second = client.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 429);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["detail"], "limit \"one-at-a-time\" exceeded");

    // The first body ends; once the client has read it all, a third is admitted.
    tx.send(Bytes::from_static(b"and two")).await.unwrap();
    drop(tx);
    assert_eq!(first.text().await.unwrap(), "and two");
    let third = client.get(&url).send().await.unwrap();
    assert_eq!(third.status(), 200);

    // A client that goes away mid-body: the server drops the body, and the lease with it.
    let (tx, on_drop) = opened.recv().await.unwrap();
    drop(third);
    tokio::time::timeout(bound, on_drop).await.unwrap().unwrap();
    drop(tx);
    let fourth = client.get(&url).send().await.unwrap();
    assert_eq!(fourth.status(), 200);
    let (tx, _) = opened.recv().await.unwrap();
    drop(tx);
    assert_eq!(fourth.text().await.unwrap(), "");

    // The same over a bare connection that closes after reading the head.
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let (tx, on_drop) = opened.recv().await.unwrap();
    drop(conn);
    tokio::time::timeout(bound, on_drop).await.unwrap().unwrap();
    drop(tx);
    assert_eq!(get_status(&client, &url).await, 200);
}
