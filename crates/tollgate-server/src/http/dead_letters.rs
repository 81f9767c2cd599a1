//! The reverse proxy's dead letters: list and inspect them, replay one through the proxy
//! now, or discard it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use tollgate_core::time::now_ms;
use tollgate_registry::{
    DeadLetterClaim, DeadLetterFilter, DeadLetterRecord, Registry, ReplayClaim,
};

use super::answers::{DeadLetterList, DeadLetterView, HeaderPair, ReplayOutcome};
use super::keys::{failed, keys_off};
use super::problem::Problem;
use super::query::Query;
use crate::app::App;

/// How long, at least, a replay's claim on a dead letter stands before another replay may
/// take it over. A claim older than this and than twice the longest route's
/// `total_timeout` (which bounds a replay's tries) was left by an instance that stopped
/// mid-replay.
const REPLAY_CLAIM_STALE_MS: i64 = 5 * 60 * 1000;

/// The age past which a claim is taken as left behind, for `proxy`'s routes.
fn claim_stale_ms(proxy: &tollgate_proxy::Proxy) -> i64 {
    let longest = i64::try_from(proxy.longest_resend().as_millis()).unwrap_or(i64::MAX);
    longest.saturating_mul(2).max(REPLAY_CLAIM_STALE_MS)
}

fn no_letter(id: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "dead-letter-not-found",
        "No such dead letter",
        Some(format!("no dead letter {id:?}")),
    )
    .into_response()
}

/// The query of `GET /v1/dead-letters`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersQuery {
    /// Only those of this route (its host, when it has one, then its path prefix: `/v1`,
    /// `api.example.com/v1`).
    route: Option<String>,
    /// Those older than this id: the `next` of the page before.
    before: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// `GET /v1/dead-letters?route=&before=&limit=`: dead letters, newest first.
#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    tag = "dead-letters",
    operation_id = "list_dead_letters",
    summary = "The proxy's dead letters, newest first, a page at a time",
    params(DeadLettersQuery),
    responses((status = 200, description = "A page of dead letters", body = DeadLetterList)),
    security(("adminToken" = [])),
)]
pub async fn list(State(app): State<Arc<App>>, Query(q): Query<DeadLettersQuery>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = DeadLetterFilter {
        route: q.route,
        before: q.before,
        limit: Some(limit),
    };
    match reg.dead_letters(&filter).await {
        Ok(dead_letters) => {
            let full = u32::try_from(dead_letters.len()).is_ok_and(|n| n >= limit);
            let next = dead_letters.last().map(|d| d.id).filter(|_| full);
            Json(DeadLetterList { dead_letters, next }).into_response()
        }
        Err(e) => failed(e),
    }
}

fn view(d: DeadLetterRecord) -> DeadLetterView {
    DeadLetterView {
        headers: d
            .headers
            .into_iter()
            .map(|(name, value)| HeaderPair { name, value })
            .collect(),
        body_base64: base64::engine::general_purpose::STANDARD.encode(&d.body),
        body_text: String::from_utf8(d.body).ok(),
        summary: d.summary,
    }
}

/// `GET /v1/dead-letters/{id}`.
#[utoipa::path(
    get,
    path = "/v1/dead-letters/{id}",
    tag = "dead-letters",
    operation_id = "get_dead_letter",
    summary = "A dead letter, with its headers and body",
    params(("id" = i64, Path, description = "The dead letter's id")),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetterView),
        (status = 404, description = "No such dead letter (`dead-letter-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn get_one(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let Ok(n) = id.parse::<i64>() else {
        return no_letter(&id);
    };
    match reg.dead_letter(n).await {
        Ok(Some(d)) => Json(view(d)).into_response(),
        Ok(None) => no_letter(&id),
        Err(e) => failed(e),
    }
}

/// `POST /v1/dead-letters/{id}/replay`: sends the request again through the proxy now;
/// delivered, it is removed, otherwise its new tries and failure are recorded.
#[utoipa::path(
    post,
    path = "/v1/dead-letters/{id}/replay",
    tag = "dead-letters",
    operation_id = "replay_dead_letter",
    summary = "Send a dead letter again through the proxy: removed when delivered",
    params(("id" = i64, Path, description = "The dead letter's id")),
    responses(
        (status = 200, description = "How the replay went: delivered (and removed), or failed again (and recorded)", body = ReplayOutcome),
        (status = 404, description = "No such dead letter (`dead-letter-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its body was kept cut (`dead-letter-truncated`), no route takes its URL now (`dead-letter-unroutable`), or another replay of it is under way (`dead-letter-replaying`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No reverse proxy is serving (`proxy-off`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn replay(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let Ok(n) = id.parse::<i64>() else {
        return no_letter(&id);
    };
    let letter = match reg.dead_letter(n).await {
        Ok(Some(d)) => d,
        Ok(None) => return no_letter(&id),
        Err(e) => return failed(e),
    };
    if letter.summary.body_truncated {
        return Problem::new(
            StatusCode::CONFLICT,
            "dead-letter-truncated",
            "The dead letter's body was kept cut",
            Some(format!(
                "its body was longer than the route's dead_letter.body_limit and only {} bytes \
                 were kept: replaying it would send a different request",
                letter.body.len()
            )),
        )
        .into_response();
    }
    let Some(proxy) = app.proxy.get() else {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "proxy-off",
            "No reverse proxy is serving",
            Some("dead letters are replayed through the proxy: add a proxy section".into()),
        )
        .into_response();
    };
    // Claimed before it is sent, so that of two replays at once only one reaches the
    // upstream; the other is told the first is under way.
    let now = now_ms();
    let claim = match reg
        .claim_dead_letter_replay(n, now, now.saturating_sub(claim_stale_ms(proxy)))
        .await
    {
        Ok(DeadLetterClaim::Claimed(c)) => c,
        Ok(DeadLetterClaim::Replaying { since }) => return replaying(n, since),
        Ok(DeadLetterClaim::Missing) => return no_letter(&id),
        Err(e) => return failed(e),
    };
    let resend = tollgate_proxy::Resend {
        method: letter.summary.method.clone(),
        url: letter.summary.url.clone(),
        headers: letter.headers,
        body: letter.body.into(),
    };
    let resent = match proxy.resend(&resend).await {
        Ok(r) => r,
        Err(e) => {
            release(reg, &claim).await;
            return Problem::new(
                StatusCode::CONFLICT,
                "dead-letter-unroutable",
                "The dead letter cannot be sent again",
                Some(e.to_string()),
            )
            .into_response();
        }
    };
    let (delivered, failure, tries) = match resent.failure {
        None => (true, None, None),
        Some((f, t)) => (false, Some(f), Some(t)),
    };
    let recorded = match (&failure, tries) {
        (Some(f), Some(t)) => reg.dead_letter_replay_failed(&claim, t, f, now_ms()).await,
        _ => reg.delete_dead_letter(n).await,
    };
    if let Err(e) = recorded {
        release(reg, &claim).await;
        return failed(e);
    }
    let dead_letter = if delivered {
        None
    } else {
        match reg.dead_letter(n).await {
            Ok(d) => d.map(|d| d.summary),
            Err(e) => return failed(e),
        }
    };
    Json(ReplayOutcome {
        delivered,
        status: resent.status,
        route: resent.route,
        upstream: resent.upstream,
        failure,
        dead_letter,
    })
    .into_response()
}

/// The 409 of a replay that finds another under way.
fn replaying(id: i64, since: i64) -> Response {
    let started = now_ms().saturating_sub(since).max(0) / 1000;
    Problem::new(
        StatusCode::CONFLICT,
        "dead-letter-replaying",
        "Another replay of the dead letter is under way",
        Some(format!(
            "dead letter {id} is being replayed (started {started}s ago): it is not sent twice; \
             look at it again once that replay has ended"
        )),
    )
    .into_response()
}

/// Lets go of a claim after a replay that recorded nothing. A release that fails leaves the
/// claim to go stale, which only delays the next replay.
async fn release(reg: &Registry, claim: &ReplayClaim) {
    if let Err(e) = reg.release_dead_letter_replay(claim).await {
        tracing::warn!(dead_letter = claim.id, error = %e, "releasing a replay's claim failed");
    }
}

/// `DELETE /v1/dead-letters/{id}`: gives the request up.
#[utoipa::path(
    delete,
    path = "/v1/dead-letters/{id}",
    tag = "dead-letters",
    operation_id = "discard_dead_letter",
    summary = "Discard a dead letter",
    params(("id" = i64, Path, description = "The dead letter's id")),
    responses(
        (status = 204, description = "Discarded"),
        (status = 404, description = "No such dead letter (`dead-letter-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn discard(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let Ok(n) = id.parse::<i64>() else {
        return no_letter(&id);
    };
    match reg.delete_dead_letter(n).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => no_letter(&id),
        Err(e) => failed(e),
    }
}
