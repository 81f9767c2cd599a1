//! `POST /v1/check`: decide one request, or a batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::{Mode, Subject};

use super::problem::{FieldError, Problem};
use super::set_headers;
use crate::app::{App, decision_json};

/// The most checks one batch may hold.
const MAX_BATCH: usize = 100;

/// One check as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Who is asking.
    pub subject: SubjectIn,
    /// Units to consume (default 1).
    #[serde(default = "one")]
    pub cost: u64,
    /// Evaluate without consuming.
    #[serde(default)]
    pub dry_run: bool,
}

fn one() -> u64 {
    1
}

/// Subject attributes as the API takes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectIn {
    /// User id.
    pub user: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// HTTP method.
    pub method: Option<String>,
    /// Request path.
    pub path: Option<String>,
    /// The API key presented; counted by a fingerprint, never stored or echoed.
    pub api_key: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Any other attributes, matched as `attr.NAME`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl SubjectIn {
    /// The normalised subject, or a 422 naming the attribute at fault.
    pub fn build(&self, app: &App, at: &str) -> Result<Subject, Problem> {
        let mut s = Subject::new();
        let mut errors = Vec::new();
        let key = self.api_key.as_deref().map(|k| app.fingerprint(k));
        let fields = [
            ("user", self.user.as_deref()),
            ("ip", self.ip.as_deref()),
            ("method", self.method.as_deref()),
            ("path", self.path.as_deref()),
            ("tenant", self.tenant.as_deref()),
            ("key", key.as_deref()),
        ];
        for (name, value) in fields {
            if let Some(v) = value
                && let Err(e) = s.set(name, v)
            {
                let field = if name == "key" { "api_key" } else { name };
                errors.push(FieldError {
                    path: format!("{at}.{field}"),
                    message: e.to_string(),
                });
            }
        }
        for (name, value) in &self.attributes {
            if let Err(e) = s.set(&format!("attr.{name}"), value) {
                errors.push(FieldError {
                    path: format!("{at}.attributes.{name}"),
                    message: e.to_string(),
                });
            }
        }
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-subject",
                "The subject has invalid attributes",
                None,
            )
            .with_errors(errors))
        }
    }
}

/// Turns a body extraction failure into a problem (413 for an oversized body).
pub fn body_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The request body is too large",
            rejection.body_text(),
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "The request body could not be read",
            rejection.body_text(),
        )
    }
}

/// `POST /v1/check`.
pub async fn check(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_problem(r).into_response(),
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return Problem::malformed(e.to_string()).into_response(),
    };
    if value.get("checks").is_some() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Batch {
            checks: Vec<CheckRequest>,
        }
        let batch: Batch = match serde_json::from_value(value) {
            Ok(b) => b,
            Err(e) => return Problem::invalid(e.to_string()).into_response(),
        };
        if batch.checks.len() > MAX_BATCH {
            return Problem::invalid(format!(
                "{} checks; a batch holds at most {MAX_BATCH}",
                batch.checks.len()
            ))
            .into_response();
        }
        let mut results = Vec::with_capacity(batch.checks.len());
        for (i, req) in batch.checks.iter().enumerate() {
            match decide(&app, req, &format!("checks[{i}].subject")).await {
                Ok((json, _)) => results.push(json),
                Err(p) => return p.into_response(),
            }
        }
        return axum::Json(json!({ "results": results })).into_response();
    }
    let req: CheckRequest = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return Problem::invalid(e.to_string()).into_response(),
    };
    match decide(&app, &req, "subject").await {
        Ok((json, headers)) => {
            let mut res = axum::Json(json).into_response();
            set_headers(&mut res, &headers);
            res
        }
        Err(p) => p.into_response(),
    }
}

async fn decide(
    app: &App,
    req: &CheckRequest,
    at: &str,
) -> Result<(Value, tollgate_core::Headers), Problem> {
    let started = Instant::now();
    let subject = req.subject.build(app, at)?;
    let policy = app.limiter.policy();
    let mode = if req.dry_run {
        Mode::Preview
    } else {
        Mode::Consume
    };
    let d = app
        .limiter
        .decide(&policy, &subject, req.cost, app.now(), mode)
        .await;
    if !req.dry_run {
        app.record(&d, started);
    }
    Ok((decision_json(&d), d.headers()))
}
