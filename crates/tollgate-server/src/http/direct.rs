//! The two decision routes, `POST /v1/check` and `/v1/authorize`, answered before the
//! router: every other route goes through axum's router and the tower-http layers.
//!
//! This replaces routing decisions like the other routes: matching the path in the
//! router, the request id made and echoed, a span, a timeout and the panic guard around
//! each. On the load of `bench/http.sh` that costs a share of the decision rate worth the
//! exception (docs/benchmarks.md, "What the hand-made pieces earn"). What the decision
//! routes keep, they keep cheaply: a request id (the caller's, or one made) and the
//! security headers on every answer, `server.request_timeout` on reading the body, and
//! the store's own timeout and the key lookups' bounds on the decision.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query};
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::Response;
use hyper::body::Incoming;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use super::layers::X_REQUEST_ID;
use crate::app::App;
use crate::telemetry::sample;

/// Answers `req` from a connection whose peer is `peer`: a decision route here, anything
/// else through `router`; counted under the service-level objectives it belongs to.
pub async fn answer(
    app: &App,
    router: Router,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response {
    if app.slo.objectives.is_empty() && !crate::telemetry::on() {
        return respond(app, router, peer, req).await;
    }
    let started = std::time::Instant::now();
    let path = req.uri().path().to_owned();
    let res = if crate::telemetry::on() {
        let traced = sample::decide(crate::telemetry::propagate::traceparent(req.headers()));
        if traced && is_decision(req.method(), &path) {
            sample::within(true, traced_decision(app, router, peer, req, &path)).await
        } else {
            sample::within(traced, respond(app, router, peer, req)).await
        }
    } else {
        respond(app, router, peer, req).await
    };
    if app.slo.objectives.is_empty() {
        return res;
    }
    app.slo.record(
        Some(&path),
        res.status().is_server_error(),
        started.elapsed(),
        tollgate_core::time::now_ms(),
    );
    res
}

/// A decision route's answer within its door span, a child of the caller's trace.
async fn traced_decision(
    app: &App,
    router: Router,
    peer: SocketAddr,
    req: Request<Incoming>,
    path: &str,
) -> Response {
    let span = tracing::info_span!(
        target: crate::telemetry::TRACE,
        "door",
        otel.name = format!("{} {path}", req.method()).as_str(),
        otel.kind = "server",
        http.request.method = req.method().as_str(),
        url.path = path,
        tollgate.store = app.engine.store().kind(),
        http.response.status_code = tracing::field::Empty,
    );
    crate::telemetry::propagate::adopt(&span, req.headers());
    let res = respond(app, router, peer, req)
        .instrument(span.clone())
        .await;
    span.record(
        "http.response.status_code",
        i64::from(res.status().as_u16()),
    );
    res
}

/// Whether a request is one of the decision routes answered here, whose span this door
/// makes (the router's layers make the others').
fn is_decision(method: &Method, path: &str) -> bool {
    (method == Method::POST && path == "/v1/check") || path == "/v1/authorize"
}

async fn respond(app: &App, router: Router, peer: SocketAddr, req: Request<Incoming>) -> Response {
    let mut req = req.map(Body::new);
    let request_id = req.headers().get(&X_REQUEST_ID).cloned();
    let mut res = match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/check") => super::check::serve(app, req).await,
        (_, "/v1/authorize") => {
            let query = Query::try_from_uri(req.uri());
            super::authorize::authorize(app, peer, query, req).await
        }
        _ => {
            req.extensions_mut().insert(ConnectInfo(peer));
            return match router.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
        }
    };
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let id = request_id
        .filter(|id| id.len() <= super::layers::MAX_REQUEST_ID && id.to_str().is_ok())
        .unwrap_or_else(super::request_id::next);
    headers.insert(X_REQUEST_ID, id);
    res
}
