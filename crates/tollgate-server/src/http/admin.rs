//! Admin routes: the policy and the counters. They need `Authorization: Bearer <token>`
//! whenever an admin token is set.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::time::ceil_millis;
use tollgate_core::{Check, Store};

use super::check::body_problem;
use super::problem::{FieldError, Problem};
use crate::app::App;
use crate::config::policy_part;

/// Compares without leaking where two secrets differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses admin routes without the admin token, when one is set.
pub async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.admin_token {
        let presented = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented.is_some_and(|p| same_secret(p.as_bytes(), token.as_bytes())) {
            return Problem::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// `GET /v1/config`: the policy in force.
pub async fn get_config(State(app): State<Arc<App>>) -> Response {
    let doc = app.doc.lock().map(|d| d.clone()).unwrap_or(Value::Null);
    axum::Json(policy_part(&doc)).into_response()
}

/// `PUT /v1/config` (or POST): replaces the policy. The body is YAML or JSON; a bad policy
/// changes nothing and answers 422 with every error.
pub async fn put_config(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_problem(r).into_response(),
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return Problem::malformed("the body is not UTF-8".into()).into_response();
    };
    let policy = match tollgate_core::policy::parse::parse_yaml(text) {
        Ok(v) => v,
        Err(e) => return Problem::malformed(e.to_string()).into_response(),
    };
    if let Value::Object(m) = &policy
        && let Some(k) = m
            .keys()
            .find(|k| crate::config::SERVER_SECTIONS.contains(&k.as_str()))
    {
        return Problem::invalid(format!(
            "`{k}` is a server setting; /v1/config replaces the policy only"
        ))
        .into_response();
    }
    match app.replace_policy(&policy) {
        Ok(now) => axum::Json(now).into_response(),
        Err(errs) => policy_problem(errs).into_response(),
    }
}

/// A refused policy: 422 with every error and its path.
pub(crate) fn policy_problem(errs: tollgate_core::policy::ConfigErrors) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-policy",
        "The policy is not valid",
        None,
    )
    .with_errors(
        errs.0
            .into_iter()
            .map(|e| FieldError {
                path: e.path,
                message: e.message,
            })
            .collect(),
    )
}

/// The policy's rules and its tiers' limits, each counter identity once.
fn all_rules(policy: &tollgate_core::Policy) -> Vec<&tollgate_core::policy::Rule> {
    let mut seen = std::collections::HashSet::new();
    policy
        .rules()
        .iter()
        .chain(policy.tiers().iter().flat_map(|t| t.limits.iter()))
        .filter(|r| seen.insert(r.identity()))
        .collect()
}

/// Query of `GET /v1/counters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterQuery {
    /// The counter key, as rendered from a rule's template.
    pub key: String,
    /// Only this rule (default: every rule).
    pub rule: Option<String>,
}

/// `GET /v1/counters?key=…[&rule=…]`: each rule's view of the counter, consuming nothing.
pub async fn get_counters(
    State(app): State<Arc<App>>,
    query: Result<Query<CounterQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return Problem::invalid("expected ?key=…[&rule=…]".into()).into_response();
    };
    let policy = app.limiter.policy();
    let rules: Vec<_> = all_rules(&policy)
        .into_iter()
        .filter(|r| q.rule.as_ref().is_none_or(|n| *n == r.name))
        .collect();
    if rules.is_empty() {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "no-such-rule",
            "No such rule",
            q.rule.clone(),
        )
        .into_response();
    }
    let checks: Vec<Check<'_>> = rules
        .iter()
        .map(|rule| Check {
            rule,
            key: q.key.as_str().into(),
            cost: 0,
        })
        .collect();
    let now = app.now();
    match app.limiter.store().preview(&checks, now).await {
        Ok(outcomes) => {
            let counters: Vec<Value> = rules
                .iter()
                .zip(outcomes)
                .map(|(r, o)| json!({ "rule": r.name, "key": q.key, "limit": o.limit, "remaining": o.remaining, "reset_ms": ceil_millis(o.reset) }))
                .collect();
            axum::Json(json!({ "counters": counters })).into_response()
        }
        Err(e) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "The store did not answer",
            e.to_string(),
        )
        .into_response(),
    }
}

/// Query of `DELETE /v1/counters/{key}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetQuery {
    /// Only this rule (default: every rule).
    pub rule: Option<String>,
}

/// `DELETE /v1/counters/{key}[?rule=…]`: forgets the counter (and any penalty on it).
pub async fn delete_counter(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    query: Result<Query<ResetQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return Problem::invalid("expected [?rule=…]".into()).into_response();
    };
    let policy = app.limiter.policy();
    let mut reset = Vec::new();
    for rule in all_rules(&policy)
        .into_iter()
        .filter(|r| q.rule.as_ref().is_none_or(|n| *n == r.name))
    {
        if let Err(e) = app.limiter.store().reset(rule, &key).await {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "The store did not answer",
                e.to_string(),
            )
            .into_response();
        }
        reset.push(rule.name.clone());
    }
    tracing::info!(key = %key, rules = ?reset, "counter reset");
    axum::Json(json!({ "key": key, "reset": reset })).into_response()
}
