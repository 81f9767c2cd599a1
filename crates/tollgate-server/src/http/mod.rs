//! The HTTP doors: the decision API, forward-auth, admin and operations routes.

pub mod admin;
pub mod authorize;
pub mod check;
pub mod ops;
pub mod problem;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use problem::Problem;

/// The whole HTTP surface.
pub fn router(app: Arc<App>, max_body: usize, timeout: Duration) -> Router {
    let admin = Router::new()
        .route(
            "/v1/config",
            get(admin::get_config)
                .put(admin::put_config)
                .post(admin::put_config),
        )
        .route("/v1/counters", get(admin::get_counters))
        .route("/v1/counters/{key}", delete(admin::delete_counter))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            admin::require_token,
        ));
    Router::new()
        .route("/v1/check", post(check::check))
        .route("/v1/authorize", any(authorize::authorize))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(admin)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: query strings may carry secrets.
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(app)
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "No such route", None)
}

fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    tracing::error!(panic = %what, "a request handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        None,
    )
    .into_response()
}

/// Sets the rate-limit headers of a decision on a response.
pub fn set_headers(res: &mut Response, headers: &tollgate_core::Headers) {
    let map = res.headers_mut();
    map.reserve(headers.0.len());
    for (name, value) in headers.iter() {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(name, v);
        }
    }
}

/// The peer address of a connection, for forward-auth's proxy trust.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;
