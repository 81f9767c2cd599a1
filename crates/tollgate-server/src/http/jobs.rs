//! The job queue's admin routes: list and inspect jobs, retry a dead-lettered one, or
//! discard it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_core::time::now_ms;
use tollgate_registry::{Job, JobFilter, JobState};

use super::answers::JobList;
use super::keys::{failed, keys_off};
use super::problem::Problem;
use super::query::Query;
use crate::app::App;

fn no_job(id: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "job-not-found",
        "No such job",
        Some(format!("no job {id:?}")),
    )
    .into_response()
}

/// The query of `GET /v1/jobs`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only jobs in this state.
    #[param(value_type = Option<JobState>)]
    state: Option<String>,
    /// Only jobs of this kind (`notify.email`, …).
    kind: Option<String>,
    /// At most this many (default 100).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// `GET /v1/jobs?state=&kind=&limit=`: jobs, newest first, and the count per state.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    operation_id = "list_jobs",
    summary = "Jobs, newest first, and the count per state",
    params(JobsQuery),
    responses((status = 200, description = "The jobs and the counts", body = JobList)),
    security(("adminToken" = [])),
)]
pub async fn list(State(app): State<Arc<App>>, Query(q): Query<JobsQuery>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let state = match q.state.as_deref().map(|s| (s, JobState::from_name(s))) {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((s, None)) => {
            return Problem::invalid_query(format!(
                "state: {s:?} is not queued, running, done, dead or discarded"
            ))
            .into_response();
        }
    };
    let filter = JobFilter {
        state,
        kind: q.kind,
        before: None,
        limit: q.limit,
    };
    let (jobs, counts) = match tokio::try_join!(reg.jobs(&filter), reg.job_counts()) {
        Ok(found) => found,
        Err(e) => return failed(e),
    };
    Json(JobList { jobs, counts }).into_response()
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    operation_id = "get_job",
    summary = "A job",
    params(("id" = String, Path, description = "The job's id (`job_…`)")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job (`job-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn get_one(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    match reg.job(&id).await {
        Ok(Some(job)) => Json(job).into_response(),
        Ok(None) => no_job(&id),
        Err(e) => failed(e),
    }
}

/// The answer to a retry or discard: the job as it now stands, or why it was not moved.
async fn moved(
    app: &App,
    id: &str,
    done: Result<bool, tollgate_registry::RegistryError>,
    verb: &str,
) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    match (done, reg.job(id).await) {
        (Err(e), _) | (_, Err(e)) => failed(e),
        (_, Ok(None)) => no_job(id),
        (Ok(true), Ok(Some(job))) => Json(job).into_response(),
        (Ok(false), Ok(Some(job))) => Problem::new(
            StatusCode::CONFLICT,
            "job-state",
            "The job cannot be moved from its state",
            Some(format!("a {} job cannot be {verb}", job.state.name())),
        )
        .into_response(),
    }
}

/// `POST /v1/jobs/{id}/retry`: a dead or discarded job queued again with fresh tries.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/retry",
    tag = "jobs",
    operation_id = "retry_job",
    summary = "Queue a dead or discarded job again, with fresh tries",
    params(("id" = String, Path, description = "The job's id (`job_…`)")),
    responses(
        (status = 200, description = "The job as it now stands", body = Job),
        (status = 404, description = "No such job (`job-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is neither dead nor discarded (`job-state`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn retry(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let done = reg.retry_job(&id, now_ms()).await;
    moved(&app, &id, done, "retried").await
}

/// `POST /v1/jobs/{id}/discard`: a queued or dead job given up.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/discard",
    tag = "jobs",
    operation_id = "discard_job",
    summary = "Give up a queued or dead job",
    params(("id" = String, Path, description = "The job's id (`job_…`)")),
    responses(
        (status = 200, description = "The job as it now stands", body = Job),
        (status = 404, description = "No such job (`job-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is neither queued nor dead (`job-state`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn discard(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let done = reg.discard_job(&id, now_ms()).await;
    moved(&app, &id, done, "discarded").await
}
