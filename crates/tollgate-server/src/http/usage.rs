//! What a key has used and may still use: `/v1/keys/{id}/usage`, `/usage/history` and
//! `/limits`, and the violations: `/v1/violations`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_core::Mode;
use tollgate_core::policy::Rule;
use tollgate_core::time::{NANOS_PER_MILLI, ceil_millis};
use tollgate_registry::{Granularity, RegistryError, UsageBucket, ViolationFilter};

use super::answers::{KeyLimit, KeyLimits, KeyUsage, UsageHistory, UsageLimit, ViolationPage};
use super::keys::{failed, keys_off, not_found};
use super::problem::Problem;
use super::query::Query;
use tollgate_core::time::now_ms;
use tollgate_engine::{Attributes, KeyEntry, Request, Scope};

use crate::app::App;

/// The most buckets one history answer holds.
const MAX_BUCKETS: i64 = 10_000;

/// A key's record, or the answer to give instead.
async fn key(app: &App, id: &str) -> Result<KeyEntry, Response> {
    let Some(reg) = app.registry.as_ref() else {
        return Err(keys_off());
    };
    match reg.get_key(id).await {
        Ok(Some(k)) => Ok(KeyEntry::compile(k, &app.engine.policy())),
        Ok(None) => Err(not_found(id)),
        Err(e) => Err(failed(e)),
    }
}

/// `GET /v1/keys/{id}/usage`: each limit that applies to the key and where it stands now,
/// read without consuming.
#[utoipa::path(
    get,
    path = "/v1/keys/{id}/usage",
    tag = "usage",
    operation_id = "key_usage",
    summary = "Where each of a key's limits stands now, read without consuming",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "Each limit that applies", body = KeyUsage),
        (status = 404, description = "No such key (`key-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn now(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let entry = match key(&app, &id).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let entry = Arc::new(entry);
    let mut request = Request::new(Attributes::Subject(tollgate_core::Subject::new()));
    request.cost = 0;
    request.mode = Mode::Preview;
    let mut scope = Scope::default();
    let verdict = app
        .engine
        .decide_for_key(&mut scope, entry.clone(), request)
        .await;
    let d = &verdict.decision;
    let limits = d
        .limits
        .iter()
        .map(|l| UsageLimit {
            name: l.rule.name.clone(),
            algorithm: l.rule.limit.kind().name(),
            key: l.key.to_string(),
            limit: l.outcome.limit,
            remaining: l.outcome.remaining,
            used: l.outcome.limit.saturating_sub(l.outcome.remaining),
            reset_ms: ceil_millis(l.outcome.reset),
            window_ms: l.rule.limit.window(d.now).map(|w| w / NANOS_PER_MILLI),
            degraded: l.degraded,
        })
        .collect();
    Json(KeyUsage {
        key_id: entry.record.id.clone(),
        tier: entry.record.tier.clone(),
        owner: entry.record.owner.clone(),
        limits,
    })
    .into_response()
}

/// One limit as `/limits` shows it.
fn limit_json(rule: &Rule, source: &'static str, now: u64) -> KeyLimit {
    KeyLimit {
        name: rule.name.clone(),
        source,
        algorithm: rule.limit.kind().name(),
        limit: rule.limit.quota(),
        window_ms: rule.limit.window(now).map(|w| w / NANOS_PER_MILLI),
        counter: rule.key.source().to_string(),
        shadow: rule.shadow,
    }
}

/// `GET /v1/keys/{id}/limits`: the key's tier limits with its overrides applied.
#[utoipa::path(
    get,
    path = "/v1/keys/{id}/limits",
    tag = "usage",
    operation_id = "key_limits",
    summary = "A key's tier limits with its overrides applied",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "The limits that apply", body = KeyLimits),
        (status = 404, description = "No such key (`key-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn limits(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let entry = match key(&app, &id).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let policy = app.engine.policy();
    let now = app.engine.now();
    let out: Vec<_> = policy
        .key_limits(Some(&entry.record.tier), &entry.limits)
        .map(|(rule, own)| limit_json(rule, if own { "override" } else { "tier" }, now))
        .collect();
    Json(KeyLimits {
        key_id: entry.record.id.clone(),
        tier: entry.record.tier.clone(),
        tier_defined: policy.tiers().get(&entry.record.tier).is_some(),
        overrides: entry.record.overrides.clone(),
        limits: out,
    })
    .into_response()
}

/// An instant in a query: ms since the Unix epoch, or RFC 3339.
pub(crate) fn instant(text: &str, field: &str) -> Result<i64, Problem> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            Problem::invalid(format!(
                "{field}: {text:?} is not an instant (ms since the epoch, or RFC 3339 such as 2026-11-24T10:00:00Z)"
            ))
        })
}

/// The query of `/usage/history`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// The range's start: ms since the epoch, or RFC 3339 (default: a day before `to`).
    from: Option<String>,
    /// The range's end, not included (default: now).
    to: Option<String>,
    /// `minute`, `hour` (the default) or `day`; at most 10000 periods per answer.
    #[param(value_type = Option<GranularityName>, inline)]
    granularity: Option<String>,
}

/// The granularities of usage history, as the schema names them.
pub struct GranularityName;

impl utoipa::PartialSchema for GranularityName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Granularity::ALL.into_iter().map(Granularity::name)))
            .into()
    }
}

impl utoipa::ToSchema for GranularityName {
    fn name() -> std::borrow::Cow<'static, str> {
        "Granularity".into()
    }
}

impl HistoryQuery {
    /// The granularity and `[from, to)` asked for (default: hourly over the last day).
    fn range(&self) -> Result<(Granularity, i64, i64), Problem> {
        let granularity = match self.granularity.as_deref() {
            None => Granularity::Hour,
            Some(g) => Granularity::from_name(g).ok_or_else(|| {
                Problem::invalid(format!(
                    "granularity: {g:?} is not one of minute, hour, day"
                ))
            })?,
        };
        let to = self.to.as_deref().map(|t| instant(t, "to")).transpose()?;
        let to = to.unwrap_or_else(now_ms);
        let from = self
            .from
            .as_deref()
            .map(|f| instant(f, "from"))
            .transpose()?;
        let from = from.unwrap_or_else(|| to.saturating_sub(86_400_000));
        if from >= to {
            return Err(Problem::invalid("from must be before to".into()));
        }
        if to
            .saturating_sub(from)
            .checked_div(granularity.millis())
            .unwrap_or(0)
            > MAX_BUCKETS
        {
            return Err(Problem::invalid(format!(
                "at most {MAX_BUCKETS} {}s per answer; narrow from..to or coarsen the granularity",
                granularity.name()
            )));
        }
        Ok((granularity, from, to))
    }
}

/// `GET /v1/keys/{id}/usage/history?from=&to=&granularity=minute|hour|day`: decisions per
/// period (default: hourly over the last day).
#[utoipa::path(
    get,
    path = "/v1/keys/{id}/usage/history",
    tag = "usage",
    operation_id = "key_usage_history",
    summary = "A key's decisions per period",
    params(("id" = String, Path, description = "The key's id (`key_…`)"), HistoryQuery),
    responses(
        (status = 200, description = "The periods that saw decisions", body = UsageHistory),
        (status = 404, description = "No such key (`key-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad instant, granularity or range (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let (granularity, from, to) = match q.range() {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    match reg.get_key(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&id),
        Err(e) => return failed(e),
    }
    let found = reg.usage_history(&id, granularity, from, to).await;
    history_answer(Whose::Key(id), (granularity, from, to), found)
}

/// Whose history an answer is.
enum Whose {
    Key(String),
    Owner(String),
}

/// A history answer: whose it is, the range, the buckets.
fn history_answer(
    whose: Whose,
    (granularity, from, to): (Granularity, i64, i64),
    found: Result<Vec<UsageBucket>, RegistryError>,
) -> Response {
    let (key_id, owner) = match whose {
        Whose::Key(id) => (Some(id), None),
        Whose::Owner(owner) => (None, Some(owner)),
    };
    match found {
        Ok(buckets) => Json(UsageHistory {
            granularity: granularity.name(),
            from,
            to,
            buckets,
            key_id,
            owner,
        })
        .into_response(),
        Err(e) => failed(e),
    }
}

/// `GET /v1/owners/{owner}/usage/history?from=&to=&granularity=`: every key of one owner
/// together, per period: what the customer is billed on.
#[utoipa::path(
    get,
    path = "/v1/owners/{owner}/usage/history",
    tag = "usage",
    operation_id = "owner_usage_history",
    summary = "Every key of one owner together, per period",
    params(("owner" = String, Path, description = "The owner's id, as keys name it"), HistoryQuery),
    responses(
        (status = 200, description = "The periods that saw decisions", body = UsageHistory),
        (status = 422, description = "A bad instant, granularity or range (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn owner_history(
    State(app): State<Arc<App>>,
    Path(owner): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let (granularity, from, to) = match q.range() {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let found = reg.owner_usage_history(&owner, granularity, from, to).await;
    history_answer(Whose::Owner(owner), (granularity, from, to), found)
}

/// The query of `/v1/violations`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ViolationsQuery {
    /// Only this key's.
    key_id: Option<String>,
    /// From this instant: ms since the epoch, or RFC 3339.
    from: Option<String>,
    /// Before this instant.
    to: Option<String>,
    /// Violations after this id: the `next` of the previous page.
    after: Option<i64>,
    /// At most this many (default 100; taken as 1 to 1000).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// `GET /v1/violations?key_id=&from=&to=&after=&limit=`: denials, oldest first; `next` is
/// the `after` of the following page.
#[utoipa::path(
    get,
    path = "/v1/violations",
    tag = "usage",
    operation_id = "list_violations",
    summary = "Denials, oldest first",
    params(ViolationsQuery),
    responses(
        (status = 200, description = "A page of violations; `next` is the `after` of the following page", body = ViolationPage),
        (status = 422, description = "A bad instant (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn violations(State(app): State<Arc<App>>, Query(q): Query<ViolationsQuery>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let from = match q.from.as_deref().map(|f| instant(f, "from")).transpose() {
        Ok(f) => f,
        Err(p) => return p.into_response(),
    };
    let to = match q.to.as_deref().map(|t| instant(t, "to")).transpose() {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = ViolationFilter {
        key_id: q.key_id,
        from,
        to,
        after: q.after,
        limit: Some(limit),
    };
    match reg.violations(&filter).await {
        Ok(found) => {
            let next = super::next_after(&found, limit, |v| v.id);
            Json(ViolationPage {
                violations: found,
                next,
            })
            .into_response()
        }
        Err(e) => failed(e),
    }
}
