//! Admin routes: the gate every admin route sits behind, the policy, the counters and the
//! audit log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tollgate_core::time::{NANOS_PER_SEC, ceil_millis};
use tollgate_core::{Check, Mode, Store, Subject};
use tollgate_registry::{AuditEntry, AuditFilter};

use super::answers::{AuditPage, CounterReset, CounterView, Counters};
use super::body::{Reads, check_content_type, yaml_body};
use super::problem::Problem;
use super::problem::policy_problem;
use super::query::Query;
use tollgate_core::time::now_ms;

use crate::app::App;
use crate::auth::required_role;
use crate::config::policy_part;

/// The door of every admin route: the admin API's own rate limits (per client IP, then per
/// caller), authentication, the role the route needs, and an audit entry for every change.
pub async fn gate(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    // Behind a trusted proxy, the client it names; otherwise the peer.
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| super::authorize::client_ip(&app, c.0.ip(), req.headers()));
    let mut by_ip = Subject::new();
    if let Some(ip) = ip {
        by_ip.set_ip(ip);
    }
    if let Some(refused) = over_limit(&app, &by_ip).await {
        return refused;
    }
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let admin = app.admin.load_full();
    // The dashboard's session cookie counts only without a bearer token, and only with
    // the session's CSRF token beside it.
    let session = bearer
        .is_none()
        .then(|| super::signin::cookie(req.headers(), crate::oidc::SESSION_COOKIE))
        .flatten()
        .filter(|_| admin.oidc().is_some());
    let who = match session {
        Some(cookie) => {
            let csrf = req
                .headers()
                .get(crate::oidc::CSRF_HEADER)
                .and_then(|v| v.to_str().ok());
            match admin.session(cookie, csrf, now_ms()) {
                Ok(s) if app.sign_outs.refused(&s.id).await => {
                    return Problem::unauthorized("this dashboard session was signed out".into())
                        .into_response();
                }
                Ok(s) => s.principal,
                Err(e) => return Problem::unauthorized(e.to_string()).into_response(),
            }
        }
        None => match admin.authenticate(bearer).await {
            Ok(p) => p,
            Err(e) => return Problem::unauthorized(e.to_string()).into_response(),
        },
    };
    let mut by_caller = Subject::new();
    if by_caller.set("user", &who.actor).is_ok()
        && let Some(refused) = over_limit(&app, &by_caller).await
    {
        return refused;
    }
    let method = req.method().clone();
    if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        let path = req.uri().path();
        let reads = if path == "/v1/config" || path.starts_with("/v1/tiers/") {
            Reads::Document
        } else {
            Reads::Json
        };
        if let Err(p) = check_content_type(req.headers(), reads) {
            return p.into_response();
        }
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let need = required_role(&method, &route);
    if who.role < need {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This role may not do that",
            Some(format!(
                "{} has the {} role; {method} {route} needs {}",
                who.actor,
                who.role.name(),
                need.name()
            )),
        )
        .into_response();
    }
    let target = req.uri().path().to_owned();
    let res = next.run(req).await;
    if method != Method::GET
        && method != Method::HEAD
        && let Some(registry) = &app.registry
    {
        let entry = AuditEntry {
            at: now_ms(),
            actor: who.actor,
            role: who.role.name().into(),
            action: format!("{method} {route}"),
            target,
            source: ip.map_or_else(|| "-".into(), |ip| ip.to_string()),
            status: i64::from(res.status().as_u16()),
        };
        if let Err(e) = registry.audit(&entry).await {
            tracing::error!(error = %e, action = %entry.action, actor = %entry.actor, "the audit entry could not be written");
        }
    }
    res
}

/// A 429 when `subject` is over the admin API's limits.
async fn over_limit(app: &App, subject: &Subject) -> Option<Response> {
    let policy = app.admin_limiter.policy();
    let d = app
        .admin_limiter
        .decide(&policy, subject, 1, app.engine.now(), Mode::Consume)
        .await;
    if d.allowed {
        return None;
    }
    let secs = d
        .retry_after()
        .map_or(1, |t| t.div_ceil(NANOS_PER_SEC).max(1));
    Some(
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many admin requests",
            None,
        )
        .with_header("retry-after", secs.to_string())
        .into_response(),
    )
}

/// The query of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this actor's changes.
    actor: Option<String>,
    /// From this instant (ms since the Unix epoch).
    from: Option<i64>,
    /// Before this instant (ms).
    to: Option<i64>,
    /// Entries after this id: the `next` of the previous page.
    after: Option<i64>,
    /// At most this many (default 100; taken as 1 to 1000).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// `GET /v1/audit?actor=&from=&to=&after=&limit=`: admin changes, oldest first.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "audit",
    summary = "The audit log: admin changes, oldest first",
    params(AuditQuery),
    responses((status = 200, description = "A page of entries; `next` is the `after` of the following page", body = AuditPage)),
    security(("adminToken" = [])),
)]
pub async fn audit(State(app): State<Arc<App>>, Query(q): Query<AuditQuery>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return super::keys::keys_off();
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = AuditFilter {
        actor: q.actor,
        from: q.from,
        to: q.to,
        after: q.after,
        limit: Some(limit),
    };
    match reg.audit_log(&filter).await {
        Ok(entries) => {
            let next = super::next_after(&entries, limit, |e| e.id);
            axum::Json(AuditPage { entries, next }).into_response()
        }
        Err(e) => super::keys::failed(e),
    }
}

/// `GET /v1/config`: the policy in force.
#[utoipa::path(
    get,
    path = "/v1/config",
    tag = "config",
    operation_id = "get_config",
    summary = "The policy in force",
    responses((status = 200, description = "The policy part of the configuration (rules, tiers, lists, …)", body = Object)),
    security(("adminToken" = [])),
)]
pub async fn get_config(State(app): State<Arc<App>>) -> Response {
    let doc = app.doc.lock().map(|d| d.clone()).unwrap_or(Value::Null);
    axum::Json(policy_part(&doc)).into_response()
}

/// `PUT /v1/config` (or POST): replaces the policy. The body is YAML or JSON; a bad policy
/// changes nothing and answers 422 with every error.
#[utoipa::path(
    put,
    path = "/v1/config",
    tag = "config",
    operation_id = "put_config",
    summary = "Replace the policy (POST does the same)",
    description = "The body is the policy (rules, tiers, lists, …) in YAML or JSON, never the server's own \
sections. A bad policy changes nothing and answers 422 with every error and its path.",
    request_body(content(
        (Object = "application/json"),
        (Object = "application/yaml"),
    ), description = "The new policy"),
    responses(
        (status = 200, description = "The policy now in force", body = Object),
        (status = 409, description = "The policy drops a tier that keys are on (`tier-in-use`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The policy is not valid (`invalid-policy`, with every error), or names a server section (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn put_config(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let policy = match yaml_body(body) {
        Ok(v) => v,
        Err(p) => return p.into_response(),
    };
    // A body that is no mapping (empty, a string, a list) would otherwise be read as a
    // policy without a section, and replace every rule with none.
    if !policy.is_object() {
        return Problem::invalid(
            "the policy is a mapping of its sections (`rules`, `tiers`, …)".into(),
        )
        .into_response();
    }
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
    // No tier that keys are on is dropped, and no key is put on one meanwhile.
    let _turn = app.tier_turn.write().await;
    if let Err(refused) = super::tiers::keep_tiers_in_use(&app, &policy).await {
        return refused;
    }
    match app.replace_policy(&policy) {
        Ok(now) => axum::Json(now).into_response(),
        Err(errs) => policy_problem(errs).into_response(),
    }
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CounterQuery {
    /// The counter key, as rendered from a rule's template.
    pub key: String,
    /// Only this rule (default: every rule).
    pub rule: Option<String>,
}

/// `GET /v1/counters?key=…[&rule=…]`: each rule's view of the counter, consuming nothing.
#[utoipa::path(
    get,
    path = "/v1/counters",
    tag = "counters",
    operation_id = "get_counters",
    summary = "Each rule's view of a counter, consuming nothing",
    params(CounterQuery),
    responses(
        (status = 200, description = "One view per rule", body = Counters),
        (status = 404, description = "No rule of that name (`no-such-rule`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`key` is missing (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store did not answer (`store-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn get_counters(
    State(app): State<Arc<App>>,
    query: Result<Query<CounterQuery>, Problem>,
) -> Response {
    let Ok(Query(q)) = query else {
        return Problem::invalid("expected ?key=…[&rule=…]".into()).into_response();
    };
    let policy = app.engine.policy();
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
    let now = app.engine.now();
    match app.engine.store().preview(&checks, now).await {
        Ok(outcomes) => {
            let counters = rules
                .iter()
                .zip(outcomes)
                .map(|(r, o)| CounterView {
                    rule: r.name.clone(),
                    key: q.key.clone(),
                    limit: o.limit,
                    remaining: o.remaining,
                    reset_ms: ceil_millis(o.reset),
                })
                .collect();
            axum::Json(Counters { counters }).into_response()
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResetQuery {
    /// Only this rule (default: every rule).
    pub rule: Option<String>,
}

/// `DELETE /v1/counters/{key}[?rule=…]`: forgets the counter (and any penalty on it).
#[utoipa::path(
    delete,
    path = "/v1/counters/{key}",
    tag = "counters",
    operation_id = "delete_counter",
    summary = "Forget a counter (and any penalty on it)",
    params(("key" = String, Path, description = "The counter key"), ResetQuery),
    responses(
        (status = 200, description = "The rules whose counter was reset", body = CounterReset),
        (status = 422, description = "The query does not fit (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store did not answer (`store-unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn delete_counter(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    query: Result<Query<ResetQuery>, Problem>,
) -> Response {
    let Ok(Query(q)) = query else {
        return Problem::invalid("expected [?rule=…]".into()).into_response();
    };
    let policy = app.engine.policy();
    let mut reset = Vec::new();
    for rule in all_rules(&policy)
        .into_iter()
        .filter(|r| q.rule.as_ref().is_none_or(|n| *n == r.name))
    {
        if let Err(e) = app.engine.store().reset(rule, &key).await {
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
    axum::Json(CounterReset { key, reset }).into_response()
}
