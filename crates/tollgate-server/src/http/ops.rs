//! Liveness, readiness and metrics.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use crate::app::App;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the policy is loaded and the store answers.
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
