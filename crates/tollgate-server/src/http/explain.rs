//! `POST /v1/explain`: what `POST /v1/check` would answer a request, and why, without
//! consuming: the rules examined, the allow or deny list that decides, each matched rule
//! with its counter key and what it would do, and the headers of the answer. The counters
//! are the live store's, read in preview mode, so the explanation is of now.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tollgate_core::Mode;
use tollgate_core::policy::Listed;
use tollgate_engine::{Attributes, Scope};

use super::answers::{Explanation, ListedBy};
use super::body::{body_problem, parse_json};
use super::check::SubjectIn;
use super::decision_json;
use super::problem::Problem;
use crate::app::App;

/// The body of `POST /v1/explain`: a check's subject and cost.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ExplainRequest)]
#[serde(expecting = "an object with `subject` and optional `cost`")]
#[serde(deny_unknown_fields)]
pub struct ExplainBody<'a> {
    /// Who would be asking.
    #[serde(borrow)]
    pub subject: SubjectIn<'a>,
    /// Units the request would cost (default 1).
    #[serde(default = "one")]
    #[schema(default = 1, format = "uint64", maximum = 18446744073709551615_u64)]
    pub cost: u64,
}

fn one() -> u64 {
    1
}

/// `POST /v1/explain`: the decision a check would get now, explained, with nothing
/// consumed.
#[utoipa::path(
    post,
    path = "/v1/explain",
    tag = "explain",
    operation_id = "explain",
    summary = "What a check would get now, and why, consuming nothing",
    request_body = ExplainBody,
    responses(
        (status = 200, description = "The rules examined, the list that decides, and the decision", body = Explanation),
        (status = 422, description = "The body does not fit, or an attribute is invalid (`invalid-request`, `invalid-subject`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn explain(State(app): State<Arc<App>>, b: Result<Bytes, BytesRejection>) -> Response {
    let bytes = match b {
        Ok(b) => b,
        Err(rejection) => return body_problem(rejection).into_response(),
    };
    let body = match parse_json::<ExplainBody<'_>>(&bytes) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let subject = match body.subject.build("subject") {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let policy = app.engine.policy();
    // Counted on the subject as sent: the attributes an API key brings (its tier, its
    // owner) are added by the engine when it decides.
    let examined = policy.candidate_count(&subject);
    let total = policy.rules().len();
    let listed = policy.listed_by(&subject).map(|(list, entry)| ListedBy {
        list: match list {
            Listed::Denied => "deny",
            Listed::Allowed => "allow",
        },
        entry,
    });
    drop(policy);
    let request = tollgate_engine::Request {
        attributes: Attributes::Subject(subject),
        api_key: body.subject.api_key.as_deref(),
        cost: body.cost,
        mode: Mode::Preview,
    };
    let mut scope = Scope::default();
    let verdict = app.engine.decide(&mut scope, request).await;
    let d = &verdict.decision;
    let headers = d.headers();
    let decision: Value =
        serde_json::from_slice(&decision_json::to_vec(d, &headers, &[])).unwrap_or(Value::Null);
    Json(Explanation {
        rules_examined: examined,
        rules_total: total,
        listed,
        consumed: false,
        decision,
    })
    .into_response()
}
