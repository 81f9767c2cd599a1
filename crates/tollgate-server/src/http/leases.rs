//! `POST /v1/release` ends concurrency leases before their `lease_ttl`, one or a batch;
//! `POST /v1/renew` gives them their `lease_ttl` again, from now, for work that outlasts
//! one. A lease that has already ended answers `released: false` (`renewed: false`), never
//! an error, so a caller may send again after a retry.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tollgate_engine::LeaseError;

use super::body::{Reads, body_problem, check_content_type, parse_json};
use super::problem::Problem;
use crate::app::App;

/// The most leases one batch may hold.
const MAX_BATCH: usize = 100;

/// The body: one lease id, or a batch.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object with `lease_id`, or `lease_ids` for a batch")]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    lease_id: Option<String>,
    lease_ids: Option<Vec<String>>,
}

/// What is done to each lease.
#[derive(Debug, Clone, Copy)]
enum Action {
    Release,
    Renew,
}

impl Action {
    /// The answer's field saying whether it was done.
    fn done(self) -> &'static str {
        match self {
            Action::Release => "released",
            Action::Renew => "renewed",
        }
    }

    async fn on(self, app: &App, lease_id: &str) -> Result<bool, LeaseError> {
        match self {
            Action::Release => app.engine.release(lease_id).await,
            Action::Renew => app.engine.renew(lease_id).await,
        }
    }
}

/// `POST /v1/release`.
#[utoipa::path(
    post,
    path = "/v1/release",
    tag = "decisions",
    operation_id = "release",
    summary = "End concurrency leases before their `lease_ttl`",
    request_body(content = crate::http::answers::LeaseBody, description = "One lease id, or a batch of up to 100"),
    responses(
        (status = 200, description = "Whether each lease was ended by this call (false when it had already ended)", body = crate::http::answers::ReleaseAnswer),
        (status = 422, description = "Not one of the two forms, or a lease id that is not one Tollgate gave out", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The counter store did not answer (`store-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn release(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&app, Action::Release, &headers, body).await
}

/// `POST /v1/renew`.
#[utoipa::path(
    post,
    path = "/v1/renew",
    tag = "decisions",
    operation_id = "renew",
    summary = "Give concurrency leases their `lease_ttl` again, from now",
    request_body(content = crate::http::answers::LeaseBody, description = "One lease id, or a batch of up to 100"),
    responses(
        (status = 200, description = "Whether each lease was renewed (false when it had already ended)", body = crate::http::answers::RenewAnswer),
        (status = 422, description = "Not one of the two forms, or a lease id that is not one Tollgate gave out", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The counter store did not answer (`store-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn renew(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&app, Action::Renew, &headers, body).await
}

async fn act(
    app: &App,
    action: Action,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(p) = check_content_type(headers, Reads::Json) {
        return p.into_response();
    }
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_problem(r).into_response(),
    };
    let parsed: ReleaseBody = match parse_json(&body) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    match parsed {
        ReleaseBody {
            lease_id: Some(id),
            lease_ids: None,
        } => match action.on(app, &id).await {
            Ok(done) => Json(json!({"lease_id": id, action.done(): done})).into_response(),
            Err(e) => problem(&e, "lease_id").into_response(),
        },
        ReleaseBody {
            lease_id: None,
            lease_ids: Some(ids),
        } => {
            if ids.len() > MAX_BATCH {
                return Problem::invalid(format!(
                    "{} lease ids; a batch holds at most {MAX_BATCH}",
                    ids.len()
                ))
                .into_response();
            }
            // One bad id does not hold up the others: it is answered in its place.
            let mut results = Vec::with_capacity(ids.len());
            for (i, id) in ids.into_iter().enumerate() {
                match action.on(app, &id).await {
                    Ok(done) => results.push(json!({"lease_id": id, action.done(): done})),
                    Err(e @ LeaseError::Store(_)) => {
                        return problem(&e, &format!("lease_ids[{i}]")).into_response();
                    }
                    Err(e) => results.push(
                        json!({"lease_id": id, action.done(): false, "error": e.to_string()}),
                    ),
                }
            }
            Json(json!({"results": results})).into_response()
        }
        _ => Problem::invalid(
            "expected either `lease_id` (one lease) or `lease_ids` (a batch)".into(),
        )
        .into_response(),
    }
}

fn problem(e: &LeaseError, at: &str) -> Problem {
    match e {
        LeaseError::Store(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Counter store unavailable",
            e.to_string(),
        ),
        LeaseError::Invalid | LeaseError::UnknownRule(_) => Problem::invalid(format!("{at}: {e}"))
            .with_errors(vec![super::problem::FieldError {
                path: at.to_owned(),
                message: e.to_string(),
            }]),
    }
}
