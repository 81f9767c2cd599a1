//! Liveness, readiness and metrics.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use crate::app::App;

/// `GET /healthz`: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")),
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the policy is loaded and the store answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    summary = "Readiness: the policy is loaded and the store answers",
    responses(
        (status = 200, description = "`ready`, and a warning line when the store has one", body = String, content_type = "text/plain"),
        (status = 503, description = "Not ready (`not-ready`) or the store does not answer (`store-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    if !app.is_ready() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            None,
        )
        .into_response();
    }
    match app.engine.store().health().await {
        Ok(()) => match app.engine.store().warning().await {
            Some(w) => format!("ready\nwarning: {w}\n").into_response(),
            None => "ready\n".into_response(),
        },
        Err(why) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Counter store unavailable",
            Some(format!(
                "decisions follow each rule's on_store_error: {why}"
            )),
        )
        .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    responses((status = 200, description = "The metrics in Prometheus' text format", body = String, content_type = "text/plain; version=0.0.4")),
)]
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut text = app.metrics.render();
    // Read off the capacity at each scrape, so opening a connection records nothing.
    let _ = write!(
        text,
        "# TYPE tollgate_connections_open gauge\ntollgate_connections_open {}\n\
         # TYPE tollgate_connections_max gauge\ntollgate_connections_max {}\n",
        app.connections.open(),
        app.connections.max()
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
