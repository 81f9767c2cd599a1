//! What the layer adds to a request, in-process: a trivial service bare, behind
//! `tower_governor` and behind the Tollgate layer, configured alike (one GCRA limit per
//! client IP, so high that every request is admitted, so each costs a full decision).
//!
//! Requests carry axum's `ConnectInfo<SocketAddr>` for one of 10,000 client addresses, in a
//! fixed pseudo-random order, every address seen once before measuring. Each request is
//! made, driven through `ready().call()` and its response dropped, with no network and no
//! runtime (every future here answers at its first poll). The sides take turns, round after
//! round in a rotating order, so a slow spell of the machine falls on all of them alike;
//! ratios are read per round and their median printed.
//!
//! Sides: `bare`, the service alone; `engine`, no service and no layer but the engine's
//! decision for the client IP and its headers, what any door pays; `governor`, tower_governor with its rate-limit
//! headers; `governor-plain`, without them; `tollgate`, the layer reading only the client
//! IP; `tollgate-default`, the layer with its default attributes (IP, method, path, user,
//! API key). Both limiters set headers on every admitted answer in the headed sides.
//!
//! Run: `cargo bench -p tollgate-tower --bench overhead` (`ROUNDS=15` by default; `EACH=1`
//! prints every round).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    missing_docs
)]

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use tollgate_core::{MemoryStore, Policy, Subject};
use tollgate_engine::{Attributes, Engine, EngineConfig, Scope};
use tollgate_tower::TollgateLayer;
use tower::{Layer, Service, ServiceExt};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::{GovernorLayer, key_extractor::PeerIpKeyExtractor};

const CLIENTS: usize = 10_000;
const BATCH: usize = 50_000;

fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("every future here answers at once"),
    }
}

/// The service every side wraps: an empty 200.
fn trivial() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|_req: Request<Body>| async { Ok(Response::new(Body::empty())) })
}

/// One side: a request in, its status out.
type Side = Box<dyn FnMut(Request<Body>) -> u16>;

fn side<T, R>(mut svc: T) -> Side
where
    T: Service<Request<Body>, Response = Response<R>> + 'static,
    T::Error: std::fmt::Debug,
{
    Box::new(move |req| {
        let svc = now(svc.ready()).unwrap();
        let res = now(svc.call(req)).unwrap();
        res.status().as_u16()
    })
}

fn engine() -> Arc<Engine<MemoryStore>> {
    let policy =
        Policy::from_yaml("rules: [{name: per-ip, key: '{ip}', limit: 1000000000, period: 1s}]")
            .unwrap();
    Arc::new(Engine::new(
        MemoryStore::default(),
        policy,
        EngineConfig::default(),
    ))
}

fn sides() -> Vec<(&'static str, Side)> {
    let governor = |headers: bool| -> Side {
        let mut config = GovernorConfigBuilder::default();
        config.per_nanosecond(1).burst_size(u32::MAX);
        if headers {
            let config = config.use_headers().finish().unwrap();
            side(GovernorLayer::new(config).layer(trivial()))
        } else {
            let config = config.key_extractor(PeerIpKeyExtractor).finish().unwrap();
            side(GovernorLayer::new(config).layer(trivial()))
        }
    };
    let ip_only = TollgateLayer::builder(engine())
        .method(false)
        .path(false)
        .user_extension(false)
        .api_key(false)
        .build()
        .unwrap();
    let decide_only = engine();
    let decide_only: Side = Box::new(move |req: Request<Body>| {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().unwrap().0;
        let mut subject = Subject::new();
        subject.set_ip(peer.ip());
        let mut scope = Scope::default();
        let request = tollgate_engine::Request::new(Attributes::Subject(subject));
        let verdict = now(decide_only.decide(&mut scope, request));
        std::hint::black_box(verdict.decision.headers());
        if verdict.decision.allowed { 200 } else { 429 }
    });
    vec![
        ("bare", side(trivial())),
        ("engine", decide_only),
        ("governor", governor(true)),
        ("governor-plain", governor(false)),
        ("tollgate", side(ip_only.layer(trivial()))),
        (
            "tollgate-default",
            side(TollgateLayer::new(engine()).layer(trivial())),
        ),
    ]
}

fn request(client: IpAddr) -> Request<Body> {
    let mut req = Request::builder()
        .uri("/v1/items")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(client, 40_000)));
    req
}

/// Nanoseconds per request over `BATCH` requests, clients taken from `order` onwards.
fn batch(side: &mut Side, clients: &[IpAddr], order: &mut usize) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        *order = (*order + 7_919) % clients.len();
        let status = side(request(clients[*order]));
        debug_assert_eq!(status, 200);
        std::hint::black_box(status);
    }
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // Test runners start bench targets too (`--list`, or `cargo test`): only `cargo bench`
    // (which passes `--bench`) measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let each = std::env::var_os("EACH").is_some();
    let clients: Vec<IpAddr> = (0..CLIENTS)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32)))
        .collect();
    let mut sides = sides();
    // For profiles: `ONLY=tollgate` keeps that side (and the bare service) alone.
    if let Ok(only) = std::env::var("ONLY") {
        sides.retain(|(name, _)| *name == "bare" || *name == only);
    }
    for (name, side) in &mut sides {
        for &c in &clients {
            assert_eq!(side(request(c)), 200, "{name} refused a request");
        }
    }
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut order = 0;
    for round in 0..rounds {
        let n = sides.len();
        for k in 0..n {
            let i = (round + k) % n;
            ns[i].push(batch(&mut sides[i].1, &clients, &mut order));
        }
        if each {
            let line: Vec<String> = sides
                .iter()
                .zip(&ns)
                .map(|((name, _), v)| format!("{name} {:.0}", v[round]))
                .collect();
            println!("round {round}: {}", line.join(", "));
        }
    }
    println!(
        "{rounds} paired rounds of {BATCH} requests over {CLIENTS} client IPs; ns per request"
    );
    println!("{:<18} {:>9} {:>9} {:>9}", "side", "median", "min", "max");
    for ((name, _), v) in sides.iter().zip(&ns) {
        let mut v = v.clone();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        println!("{name:<18} {:>9.1} {min:>9.1} {max:>9.1}", median(&mut v));
    }
    let idx = |name: &str| sides.iter().position(|(n, _)| *n == name);
    println!("ratios per round (median, min, max); overhead = (side - bare) / (peer - bare):");
    for (a, b) in [
        ("tollgate", "governor"),
        ("tollgate", "governor-plain"),
        ("tollgate-default", "governor"),
    ] {
        let (Some(a_i), Some(b_i), Some(bare)) = (idx(a), idx(b), idx("bare")) else {
            continue;
        };
        let mut r: Vec<f64> = (0..rounds).map(|i| ns[a_i][i] / ns[b_i][i]).collect();
        let min = r.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.iter().copied().fold(0.0, f64::max);
        let mut over: Vec<f64> = (0..rounds)
            .map(|i| (ns[a_i][i] - ns[bare][i]) / (ns[b_i][i] - ns[bare][i]))
            .collect();
        println!(
            "  {a} / {b}: {:.2}x ({min:.2}-{max:.2}); overhead {:.2}x",
            median(&mut r),
            median(&mut over)
        );
    }
}
