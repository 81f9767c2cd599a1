//! The proxy against real upstream servers (`upstream`), through real connections.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]

mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tollgate_core::policy::parse::{Errors, parse_yaml};
use tollgate_proxy::{Proxy, config};

struct Running {
    addr: SocketAddr,
    proxy: Arc<Proxy>,
    task: tokio::task::JoinHandle<()>,
    checks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        for c in &self.checks {
            c.abort();
        }
    }
}

/// The configuration of the `proxy` section `yaml`, where `{origin}` is replaced by
/// `origin`.
fn read(yaml: &str, origin: &str) -> config::ProxyConfig {
    let doc = parse_yaml(&yaml.replace("{origin}", origin)).unwrap();
    let mut errs = Errors::default();
    let cfg = config::parse(doc.as_object().unwrap(), "proxy", None, &mut errs);
    errs.finish(cfg).unwrap()
}

fn trusted() -> Vec<tollgate_core::policy::matcher::Cidr> {
    vec![tollgate_core::policy::matcher::Cidr::parse("127.0.0.1/32").unwrap()]
}

/// A proxy of the `proxy` section `yaml`, where `{origin}` is replaced by `origin`.
async fn proxy(yaml: &str, origin: &str) -> Running {
    let cfg = read(yaml, origin);
    serve(Proxy::new(&cfg, trusted()).unwrap(), &cfg).await
}

/// Serves `proxy` on a free loopback port, with the health checks of `cfg`.
async fn serve(proxy: Proxy, cfg: &config::ProxyConfig) -> Running {
    let proxy = Arc::new(proxy);
    let checks = proxy.spawn_health_checks(cfg);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let p = proxy.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let p = p.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let p = p.clone();
                    async move { Ok::<_, std::convert::Infallible>(p.handle(req, peer).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Running {
        addr,
        proxy,
        task,
        checks,
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = c.request(req.body(Full::new(body)).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(&client(), addr, Method::GET, path, &[], Bytes::new()).await
}

const BASIC: &str = "routes: [{upstream: api, retry: {backoff: 1ms, max_backoff: 5ms}}]\n\
                     upstreams: {api: {origins: ['{origin}']}}";

#[tokio::test]
async fn a_request_is_forwarded_with_forwarding_headers_and_without_hop_by_hop_ones() {
    let up = upstream::start().await;
    let p = proxy(BASIC, &up.origin()).await;
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (status, headers, body) = send(
        &client(),
        p.addr,
        Method::POST,
        "/echo?x=1",
        &[
            ("host", "api.example.com"),
            ("traceparent", trace),
            ("connection", "x-secret"),
            ("x-secret", "hop"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
        Bytes::from_static(b"hello"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let h = &echo["headers"];
    assert_eq!(echo["uri"], "/echo?x=1");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], 5);
    assert_eq!(h["traceparent"], trace);
    assert!(h.get("x-secret").is_none(), "{h}");
    // The test's peer is trusted, so its X-Forwarded-For is kept and extended.
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-host"], "api.example.com");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["forwarded"],
        "for=127.0.0.1;proto=http;host=\"api.example.com\""
    );
    // The upstream's own hop-by-hop headers stay between it and the proxy.
    assert!(!headers.contains_key("x-upstream-private"));
}

#[tokio::test]
async fn routes_pick_the_longest_prefix_and_strip_it_when_asked() {
    let (a, b) = (upstream::start().await, upstream::start().await);
    let yaml = format!(
        "routes: [{{upstream: a}}, {{path_prefix: /b, strip_prefix: true, upstream: b}}]\n\
         upstreams: {{a: {{origins: ['{}']}}, b: {{origins: ['{}']}}}}",
        a.origin(),
        b.origin()
    );
    let p = proxy(&yaml, "").await;
    let (status, _, body) = get(p.addr, "/b/echo").await;
    assert_eq!(status, StatusCode::OK);
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["uri"], "/echo");
    assert_eq!((a.hits(), b.hits()), (0, 1));
    get(p.addr, "/echo").await;
    assert_eq!((a.hits(), b.hits()), (1, 1));
}

#[tokio::test]
async fn failed_tries_are_retried_until_one_succeeds() {
    let up = upstream::start().await;
    let p = proxy(BASIC, &up.origin()).await;
    let (status, _, body) = get(p.addr, "/flaky?fail=2&key=a").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"recovered"[..]));
    assert_eq!(up.hits(), 3);
    // Three tries is the default: a fourth failure reaches the client.
    let (status, _, _) = get(p.addr, "/flaky?fail=3&key=b").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(up.hits(), 6);
    // A reset before any answer is retried too.
    let (status, _, body) = get(p.addr, "/reset?fail=1&key=c").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"after reset"[..]));
}

#[tokio::test]
async fn a_post_is_tried_once_unless_the_route_opts_in() {
    let up = upstream::start().await;
    let p = proxy(BASIC, &up.origin()).await;
    let c = client();
    let (status, _, _) = send(
        &c,
        p.addr,
        Method::POST,
        "/flaky?fail=1&key=p",
        &[],
        Bytes::from_static(b"x"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(up.hits(), 1);
    let opted = proxy(
        "routes: [{upstream: api, retry: {non_idempotent: true, backoff: 1ms}}]\n\
         upstreams: {api: {origins: ['{origin}']}}",
        &up.origin(),
    )
    .await;
    let (status, _, _) = send(
        &c,
        opted.addr,
        Method::POST,
        "/flaky?fail=1&key=q",
        &[],
        Bytes::from_static(b"x"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_upstreams_retry_after_is_waited_for_or_passed_on_when_past_the_deadline() {
    let up = upstream::start().await;
    let p = proxy(
        "routes: [{upstream: api, total_timeout: 3s, retry: {backoff: 1ms}}]\n\
         upstreams: {api: {origins: ['{origin}']}}",
        &up.origin(),
    )
    .await;
    // One second asked: the retry waits it out, within the deadline.
    let started = Instant::now();
    let (status, _, _) = get(p.addr, "/retry-after?fail=1&secs=1&key=a").await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // A minute asked, past the deadline: the 429 comes back at once, Retry-After intact.
    let started = Instant::now();
    let (status, headers, _) = get(p.addr, "/retry-after?fail=1&secs=60&key=b").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "60");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_try_that_takes_too_long_is_abandoned_and_tried_again() {
    let up = upstream::start().await;
    let p = proxy(
        "routes: [{upstream: api, try_timeout: 200ms, retry: {backoff: 1ms}}]\n\
         upstreams: {api: {origins: ['{origin}']}}",
        &up.origin(),
    )
    .await;
    let (status, _, _) = get(p.addr, "/slow?ms=2000&times=1&key=a").await;
    assert_eq!(status, StatusCode::OK);
    let single = proxy(
        "routes: [{upstream: api, try_timeout: 200ms, retry: {tries: 1}}]\n\
         upstreams: {api: {origins: ['{origin}']}}",
        &up.origin(),
    )
    .await;
    let (status, headers, _) = get(single.addr, "/slow?ms=2000&times=1&key=b").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["content-type"], "application/problem+json");
}

#[tokio::test]
async fn an_unreachable_origin_is_a_502_problem_and_another_origin_takes_the_retry() {
    // A port nothing listens on: bound, then closed.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let up = upstream::start().await;
    let p = proxy(
        "routes: [{upstream: api, retry: {tries: 1}}]\nupstreams: {api: {origins: ['{origin}']}}",
        &format!("http://{dead}"),
    )
    .await;
    let (status, _, body) = get(p.addr, "/echo").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        problem["type"],
        "https://tollgate.dev/problems/upstream-failed"
    );
    let pool = proxy(
        &format!(
            "routes: [{{upstream: api, retry: {{backoff: 1ms}}}}]\n\
             upstreams: {{api: {{balance: round_robin, origins: ['http://{dead}', '{}']}}}}",
            up.origin()
        ),
        "",
    )
    .await;
    for _ in 0..4 {
        assert_eq!(get(pool.addr, "/echo").await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_dead_upstream_trips_the_breaker_and_traffic_returns_when_it_recovers() {
    let up = upstream::start().await;
    let p = proxy(
        "routes: [{upstream: api, retry: {tries: 1}}]\n\
         upstreams: {api: {origins: ['{origin}'], breaker: {failures: 5, open_for: 200ms}}}",
        &up.origin(),
    )
    .await;
    up.state
        .down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let died = Instant::now();
    let mut tripped = None;
    for _ in 0..50 {
        let (status, headers, body) = get(p.addr, "/echo").await;
        if status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key("retry-after") {
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                problem["type"],
                "https://tollgate.dev/problems/upstream-unavailable"
            );
            tripped = Some(died.elapsed());
            break;
        }
    }
    let tripped = tripped.expect("the breaker opened");
    assert!(tripped < Duration::from_secs(1), "{tripped:?}");
    let hits_while_open = up.hits();
    for _ in 0..20 {
        get(p.addr, "/echo").await;
    }
    assert!(
        up.hits() <= hits_while_open + 1,
        "an open breaker sends at most a probe"
    );
    up.state
        .down
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let back = Instant::now();
    let deadline = back + Duration::from_secs(5);
    loop {
        if get(p.addr, "/echo").await.0 == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "traffic did not return");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        back.elapsed() < Duration::from_secs(2),
        "{:?}",
        back.elapsed()
    );
}

/// Requests through a proxy to an upstream failing with probability `p`, with retries on
/// or off: what the clients saw fail, and what the upstream was sent.
async fn failing_at(p: f64, tries: u32, n: u64) -> (u64, u64) {
    let up = upstream::start().await;
    let proxy = proxy(
        &format!(
            "routes: [{{upstream: api, retry: {{tries: {tries}, backoff: 1ms, max_backoff: 2ms}}}}]\n\
             upstreams: {{api: {{origins: ['{{origin}}'], eject_after: 1000000, \
             breaker: {{failures: 1000000, error_ratio: 1.0}}}}}}"
        ),
        &up.origin(),
    )
    .await;
    let c = client();
    let mut errors = 0;
    for _ in 0..n {
        let (status, _, _) = send(
            &c,
            proxy.addr,
            Method::GET,
            &format!("/random?p={p}"),
            &[],
            Bytes::new(),
        )
        .await;
        if status != StatusCode::OK {
            errors += 1;
        }
    }
    (errors, up.hits())
}

#[tokio::test]
async fn retries_cut_errors_tenfold_and_the_budget_holds_when_half_fail() {
    let n = 2_000;
    let (off_errors, off_hits) = failing_at(0.05, 1, n).await;
    let (on_errors, on_hits) = failing_at(0.05, 3, n).await;
    println!(
        "5% failing: retry off {off_errors} errors in {off_hits} upstream requests; on {on_errors} in {on_hits}"
    );
    assert_eq!(off_hits, n);
    assert!(off_errors > 50, "{off_errors}");
    assert!(
        on_errors * 10 <= off_errors,
        "errors fell by less than 90%: {on_errors} against {off_errors}"
    );
    assert!(on_hits * 10 <= n * 11, "upstream saw {on_hits} for {n}");
    let (half_off, _) = failing_at(0.5, 1, n).await;
    let (half_errors, half_hits) = failing_at(0.5, 3, n).await;
    println!(
        "50% failing: retry off {half_off} errors; on {half_errors} in {half_hits} upstream requests"
    );
    assert!(half_errors < half_off, "{half_errors} against {half_off}");
    assert!(
        half_hits * 10 <= n * 12,
        "the budget let {half_hits} through for {n}"
    );
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let up = upstream::start().await;
    let p = proxy(BASIC, &up.origin()).await;
    // 100 MB down, counted as it arrives.
    let c = client();
    let res = c
        .request(
            Request::get(format!("http://{}/bytes?n=100000000", p.addr))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let mut n = 0usize;
    while let Some(frame) = body.frame().await {
        n += frame.unwrap().into_data().map_or(0, |d| d.len());
    }
    assert_eq!(n, 100_000_000);
    // 100 MB up, in a streamed body longer than the replay limit.
    let chunk = Bytes::from(vec![b'y'; 1 << 20]);
    let stream = upstream::futures_core_stream::from_fn({
        let mut left = 100usize;
        move || {
            (left > 0).then(|| {
                left -= 1;
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(chunk.clone()))
            })
        }
    });
    let streaming: Client<HttpConnector, http_body_util::StreamBody<_>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = streaming
        .request(
            Request::put(format!("http://{}/upload", p.addr))
                .body(http_body_util::StreamBody::new(stream))
                .unwrap(),
        )
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"104857600");
}

#[tokio::test]
async fn an_upgraded_connection_passes_through_both_ways() {
    let up = upstream::start().await;
    let p = proxy(BASIC, &up.origin()).await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping over the upgraded connection")
        .await
        .unwrap();
    let mut echo = vec![0u8; 33];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping over the upgraded connection");
}

#[tokio::test]
async fn the_credential_with_quota_goes_and_a_spent_one_rests() {
    let up = upstream::start().await;
    let p = proxy(
        "routes: [{upstream: api, retry: {backoff: 1ms}}]\n\
         upstreams: {api: {origins: ['{origin}'], keys: {header: authorization, prefix: 'Bearer ', values: [a, b]}}}",
        &up.origin(),
    )
    .await;
    // "a" goes first (nothing known yet), reports none left; "b" takes over.
    let bodies: Vec<Bytes> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let (status, _, body) = get(p.addr, "/quota").await;
            assert_eq!(status, StatusCode::OK);
            v.push(body);
        }
        v
    };
    assert_eq!(&bodies[0][..], b"Bearer a");
    assert!(
        bodies[1..].iter().all(|b| &b[..] == b"Bearer b"),
        "{bodies:?}"
    );
    // The client's own credential never reaches the upstream.
    let (_, _, body) = send(
        &client(),
        p.addr,
        Method::GET,
        "/echo",
        &[("authorization", "Bearer mine")],
        Bytes::new(),
    )
    .await;
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_ne!(echo["headers"]["authorization"], "Bearer mine");
    let _ = &p.proxy;
}

#[tokio::test]
async fn an_origin_failing_its_health_checks_is_left_out_until_it_passes_again() {
    let (sick, well) = (upstream::start().await, upstream::start().await);
    // Passive ejection off, so only the active checks leave the origin out and take it back.
    let p = proxy(
        &format!(
            "routes: [{{upstream: api, retry: {{tries: 1}}}}]\n\
             upstreams: {{api: {{balance: round_robin, eject_after: 1000000, origins: ['{}', '{}'], \
             health: {{path: /healthz, interval: 20ms, timeout: 1s, unhealthy_after: 2}}}}}}",
            sick.origin(),
            well.origin()
        ),
        "",
    )
    .await;
    sick.state
        .down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // Once the checks have failed twice, no request goes to the sick origin, so none fails.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut in_a_row = 0;
    while in_a_row < 20 {
        assert!(
            Instant::now() < deadline,
            "the sick origin was never left out"
        );
        if get(p.addr, "/echo").await.0 == StatusCode::OK {
            in_a_row += 1;
        } else {
            in_a_row = 0;
        }
    }
    // Well again, it takes requests again.
    sick.state
        .down
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let echoes = || sick.state.echoes.load(std::sync::atomic::Ordering::Relaxed);
    let before = echoes();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        get(p.addr, "/echo").await;
        if echoes() > before {
            break;
        }
        assert!(Instant::now() < deadline, "the origin was never taken back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_https_origin_is_verified_against_the_upstreams_own_ca_and_spoken_to_over_http2() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tollgate_testkit::certificates(dir.path()).unwrap();
    let up = upstream::start_tls(&certs).await;
    let origin = format!("https://localhost:{}", up.addr.port());
    let trusting = proxy(
        &format!(
            "routes: [{{upstream: api}}]\nupstreams: {{api: {{origins: ['{origin}'], ca_file: '{}'}}}}",
            certs.ca.display()
        ),
        "",
    )
    .await;
    let (status, _, body) = get(trusting.addr, "/echo").await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["version"], "HTTP/2.0");
    // Without that CA the platform's roots do not know the certificate: no request is sent.
    let wary = proxy(
        &format!("routes: [{{upstream: api, retry: {{tries: 1}}}}]\nupstreams: {{api: {{origins: ['{origin}']}}}}"),
        "",
    )
    .await;
    let (status, _, _) = get(wary.addr, "/echo").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn an_h2c_origin_is_spoken_to_in_http2_without_tls_and_an_h2c_client_is_served() {
    let up = upstream::start().await;
    let origin = format!("h2c://{}", up.addr);
    let p = proxy(BASIC, &origin).await;
    // Over HTTP/1.1 from the client, HTTP/2 with prior knowledge to the origin.
    let (status, _, body) = get(p.addr, "/echo").await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["version"], "HTTP/2.0");
    // A client speaking HTTP/2 from its first byte, and a body both ways.
    let h2c: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = Request::post(format!("http://{}/echo", p.addr))
        .body(Full::new(Bytes::from_static(b"over h2c")))
        .unwrap();
    let res = h2c.request(req).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.status(), StatusCode::OK);
    let echo: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        (echo["version"].as_str(), echo["body"].as_u64()),
        (Some("HTTP/2.0"), Some(8))
    );
    // The origin is kept as http, so forwarding headers say so.
    assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
    // An http origin is still spoken to in HTTP/1.1.
    let plain = proxy(BASIC, &up.origin()).await;
    let (_, _, body) = get(plain.addr, "/echo").await;
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["version"], "HTTP/1.1");
}

#[test]
fn an_origin_scheme_other_than_http_https_or_h2c_is_refused() {
    let doc = parse_yaml(
        "routes: [{upstream: api}]\nupstreams: {api: {origins: ['h2c://127.0.0.1:1', 'h3://x:1']}}",
    )
    .unwrap();
    let mut errs = Errors::default();
    let cfg = config::parse(doc.as_object().unwrap(), "proxy", None, &mut errs);
    let errs = format!("{:?}", errs.finish(cfg).unwrap_err().0);
    assert!(errs.contains("proxy.upstreams.api.origins[1]"), "{errs}");
    assert!(!errs.contains("origins[0]"), "{errs}");
}

#[test]
fn the_listeners_certificate_files_are_checked_at_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tollgate_testkit::certificates(dir.path()).unwrap();
    let read = |tls: &str| {
        let doc = parse_yaml(&format!(
            "tls: {tls}
routes: [{{upstream: api}}]
upstreams: {{api: {{origins: ['http://127.0.0.1:1']}}}}"
        ))
        .unwrap();
        let mut errs = Errors::default();
        let cfg = config::parse(
            doc.as_object().unwrap(),
            "proxy",
            Some(dir.path()),
            &mut errs,
        );
        errs.finish(cfg).map_err(|e| format!("{:?}", e.0))
    };
    let good = read("{cert_file: cert.pem, key_file: key.pem}").unwrap();
    assert_eq!(good.tls.unwrap().cert_file, certs.cert);
    let missing = read("{cert_file: nope.pem, key_file: key.pem}").unwrap_err();
    assert!(missing.contains("proxy.tls.cert_file"), "{missing}");
    // A certificate's file given as its key holds no key.
    let swapped = read("{cert_file: cert.pem, key_file: cert.pem}").unwrap_err();
    assert!(swapped.contains("proxy.tls.key_file"), "{swapped}");
    // The CA's key is not the certificate's.
    let other = read("{cert_file: cert.pem, key_file: ca-key.pem}").unwrap_err();
    assert!(other.contains("proxy.tls.key_file"), "{other}");
    let none = read("{cert_file: cert.pem}").unwrap_err();
    assert!(none.contains("proxy.tls.key_file"), "{none}");
}

#[tokio::test]
async fn a_request_whose_tries_all_fail_is_posted_as_a_dead_letter_without_its_secrets() {
    let up = upstream::start().await;
    let cfg = read(
        "routes: [{upstream: api, remove_headers: [x-internal], retry: {tries: 2, backoff: 1ms, \
         max_backoff: 2ms}, dead_letter: {enabled: true, body_limit: 8}}]\n\
         upstreams: {api: {origins: ['{origin}'], breaker: {failures: 1000, min_requests: 1000}}}",
        &up.origin(),
    );
    let (sink, mut letters) = tollgate_proxy::dead_letter::Sink::new(16);
    let p = serve(
        Proxy::new(&cfg, trusted()).unwrap().with_dead_letters(sink),
        &cfg,
    )
    .await;
    let (status, _, _) = send(
        &client(),
        p.addr,
        Method::GET,
        "/flaky?fail=5",
        &[
            ("authorization", "Bearer client-secret"),
            ("cookie", "session=1"),
            ("x-api-key", "tg_secret"),
            ("x-internal", "stripped"),
            ("x-keep", "kept"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let letter = letters.try_recv().unwrap();
    assert_eq!(
        (
            letter.route.as_str(),
            letter.upstream.as_str(),
            letter.method.as_str()
        ),
        ("/", "api", "GET")
    );
    assert_eq!(letter.url, format!("http://{}/flaky?fail=5", p.addr));
    assert_eq!(letter.tries, 2);
    assert!(
        letter.last_failure.contains("503"),
        "{}",
        letter.last_failure
    );
    let names: Vec<&str> = letter.headers.iter().map(|(n, _)| n.as_str()).collect();
    for secret in ["authorization", "cookie", "x-api-key", "x-internal"] {
        assert!(!names.contains(&secret), "{secret} kept: {names:?}");
    }
    assert!(
        names.contains(&"x-keep") && names.contains(&"x-forwarded-for"),
        "{names:?}"
    );

    // A streamed body longer than the limit is sent whole, and kept cut when given up.
    let chunked = |n: usize| {
        let chunk = Bytes::from_static(b"12345678");
        let mut left = n;
        http_body_util::StreamBody::new(upstream::futures_core_stream::from_fn(move || {
            (left > 0).then(|| {
                left -= 1;
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(chunk.clone()))
            })
        }))
    };
    let streaming: Client<HttpConnector, http_body_util::StreamBody<_>> =
        Client::builder(TokioExecutor::new()).build_http();
    let upload = |body| {
        Request::post(format!("http://{}/upload", p.addr))
            .body(body)
            .unwrap()
    };
    let res = streaming.request(upload(chunked(3))).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"24");
    assert!(
        letters.try_recv().is_err(),
        "a delivered request is no dead letter"
    );
    up.state
        .down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let res = streaming.request(upload(chunked(3))).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let letter = letters.try_recv().unwrap();
    assert_eq!((letter.method.as_str(), letter.tries), ("POST", 1));
    assert_eq!(
        (&letter.body[..], letter.body_truncated),
        (&b"12345678"[..], true)
    );
}
