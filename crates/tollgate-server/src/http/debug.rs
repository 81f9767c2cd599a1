//! The debugging routes, for the admin role: a CPU profile, a runtime snapshot, and the
//! configuration with its secrets hidden. Unless the `debug` section turns them on, they
//! answer 404 `debug-off` (after the admin gate, so that they show nothing to others).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::problem::Problem;
use super::query::Query;
use crate::app::App;
use crate::debug::profile::{self, Format, ProfileError};
use crate::debug::runtime::Snapshot;

/// The query of `GET /v1/debug/pprof/profile`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    /// How long to sample (1 to 60 s; default 10).
    seconds: Option<u64>,
    /// `flamegraph` (SVG, the default) or `pprof` (protobuf).
    format: Option<String>,
}

/// `GET /v1/debug/pprof/profile?seconds=&format=`: samples the whole process's CPU for
/// `seconds`, then answers the profile.
#[utoipa::path(
    get,
    path = "/v1/debug/pprof/profile",
    tag = "debug",
    operation_id = "cpu_profile",
    summary = "A CPU profile of the process (debug section only)",
    params(ProfileQuery),
    responses(
        (status = 200, description = "The profile: an SVG flamegraph, or pprof protobuf with format=pprof", content(
            (Vec<u8> = "image/svg+xml"),
            (Vec<u8> = "application/vnd.google.protobuf"),
        )),
        (status = 409, description = "Another profile is being taken", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The debug section does not turn the debugging routes on", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn cpu_profile(State(app): State<Arc<App>>, Query(q): Query<ProfileQuery>) -> Response {
    if !app.debug {
        return debug_off();
    }
    let format = match q.format.as_deref() {
        None | Some("flamegraph" | "svg") => Format::Flamegraph,
        Some("pprof") => Format::Pprof,
        Some(other) => {
            return Problem::invalid_query(format!("format: {other:?} is not flamegraph or pprof"))
                .into_response();
        }
    };
    let seconds = q.seconds.unwrap_or(10);
    if !(1..=profile::MAX_SECONDS).contains(&seconds) {
        return Problem::invalid_query(format!(
            "seconds: {seconds} is not between 1 and {}",
            profile::MAX_SECONDS
        ))
        .into_response();
    }
    match profile::take(seconds, format).await {
        Ok(bytes) => {
            let kind = match format {
                Format::Flamegraph => "image/svg+xml",
                Format::Pprof => "application/vnd.google.protobuf",
            };
            let mut res = bytes.into_response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            res
        }
        Err(ProfileError::Busy) => Problem::new(
            StatusCode::CONFLICT,
            "profile-busy",
            "A profile is being taken",
            Some("one profile at a time: try again when it is done".to_owned()),
        )
        .into_response(),
        Err(e @ ProfileError::Failed(_)) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            Some(e.to_string()),
        )
        .into_response(),
    }
}

/// `GET /v1/debug/runtime`: memory, threads, the main runtime's tasks, connections.
#[utoipa::path(
    get,
    path = "/v1/debug/runtime",
    tag = "debug",
    operation_id = "runtime_snapshot",
    summary = "The process's memory, threads, tasks and connections (debug section only)",
    responses(
        (status = 200, description = "A snapshot", body = Snapshot),
        (status = 404, description = "The debug section does not turn the debugging routes on", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn runtime(State(app): State<Arc<App>>) -> Response {
    if !app.debug {
        return debug_off();
    }
    Json(crate::debug::runtime::snapshot(
        app.started,
        app.connections.open(),
        app.connections.max(),
    ))
    .into_response()
}

/// `GET /v1/debug/config`: the whole configuration in force, every section, with the
/// values of secret settings hidden.
#[utoipa::path(
    get,
    path = "/v1/debug/config",
    tag = "debug",
    operation_id = "effective_config",
    summary = "The configuration in force, secrets hidden (debug section only)",
    responses(
        (status = 200, description = "The configuration document", body = Value),
        (status = 404, description = "The debug section does not turn the debugging routes on", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn config(State(app): State<Arc<App>>) -> Response {
    if !app.debug {
        return debug_off();
    }
    let doc = app.doc.lock().map(|d| d.clone()).unwrap_or(Value::Null);
    Json(crate::debug::redact::redact(&doc)).into_response()
}

fn debug_off() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "debug-off",
        "The debugging routes are off",
        Some("turn them on with debug: { enabled: true }".to_owned()),
    )
    .into_response()
}
