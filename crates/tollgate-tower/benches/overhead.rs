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
//! Sides: `bare`, the service alone; `governor`, tower_governor with its rate-limit
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
use tollgate_core::{MemoryStore, Policy};
use tollgate_engine::{Engine, EngineConfig};
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
    vec![
        ("bare", side(trivial())),
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
    let idx = |name: &str| sides.iter().position(|(n, _)| *n == name).unwrap();
    let ratio = |a: &str, b: &str| {
        let (a, b) = (idx(a), idx(b));
        let mut r: Vec<f64> = ns[a].iter().zip(&ns[b]).map(|(x, y)| x / y).collect();
        let min = r.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.iter().copied().fold(0.0, f64::max);
        (median(&mut r), min, max)
    };
    // Overhead: a side's time less the bare service's, per round.
    let overhead = |a: &str, b: &str| {
        let (a, b, bare) = (idx(a), idx(b), idx("bare"));
        let mut r: Vec<f64> = (0..rounds)
            .map(|i| (ns[a][i] - ns[bare][i]) / (ns[b][i] - ns[bare][i]))
            .collect();
        median(&mut r)
    };
    println!("ratios per round (median, min, max):");
    for (a, b) in [
        ("tollgate", "governor"),
        ("tollgate", "governor-plain"),
        ("tollgate-default", "governor"),
    ] {
        let (med, min, max) = ratio(a, b);
        println!(
            "  {a} / {b}: {med:.2}x ({min:.2}-{max:.2}); overhead over bare: {:.2}x",
            overhead(a, b)
        );
    }
}
