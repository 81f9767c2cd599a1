//! What a key has used and may still use: `/v1/keys/{id}/usage`, `/usage/history` and
//! `/limits`, and the violations: `/v1/violations`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tollgate_core::Mode;
use tollgate_core::policy::Rule;
use tollgate_core::time::{NANOS_PER_MILLI, ceil_millis};
use tollgate_registry::{Granularity, RegistryError, UsageBucket, ViolationFilter};

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
    let limits: Vec<_> = d
        .limits
        .iter()
        .map(|l| {
            json!({
                "name": l.rule.name,
                "algorithm": l.rule.limit.kind().name(),
                "key": l.key,
                "limit": l.outcome.limit,
                "remaining": l.outcome.remaining,
                "used": l.outcome.limit.saturating_sub(l.outcome.remaining),
                "reset_ms": ceil_millis(l.outcome.reset),
                "window_ms": l.rule.limit.window(d.now).map(|w| w / NANOS_PER_MILLI),
                "degraded": l.degraded,
            })
        })
        .collect();
    Json(json!({
        "key_id": entry.record.id,
        "tier": entry.record.tier,
        "owner": entry.record.owner,
        "limits": limits,
    }))
    .into_response()
}

/// One limit as `/limits` shows it.
fn limit_json(rule: &Rule, source: &str, now: u64) -> serde_json::Value {
    json!({
        "name": rule.name,
        "source": source,
        "algorithm": rule.limit.kind().name(),
        "limit": rule.limit.quota(),
        "window_ms": rule.limit.window(now).map(|w| w / NANOS_PER_MILLI),
        "counter": rule.key.source(),
        "shadow": rule.shadow,
    })
}

/// `GET /v1/keys/{id}/limits`: the key's tier limits with its overrides applied.
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
    Json(json!({
        "key_id": entry.record.id,
        "tier": entry.record.tier,
        "tier_defined": policy.tiers().get(&entry.record.tier).is_some(),
        "overrides": entry.record.overrides,
        "limits": out,
    }))
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    granularity: Option<String>,
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
    history_answer(("key_id", &id), (granularity, from, to), found)
}

/// A history answer: whose it is, the range, the buckets.
fn history_answer(
    (field, who): (&str, &str),
    (granularity, from, to): (Granularity, i64, i64),
    found: Result<Vec<UsageBucket>, RegistryError>,
) -> Response {
    match found {
        Ok(buckets) => {
            let mut out = json!({
                "granularity": granularity.name(),
                "from": from,
                "to": to,
                "buckets": buckets,
            });
            if let Some(m) = out.as_object_mut() {
                m.insert(field.into(), who.into());
            }
            Json(out).into_response()
        }
        Err(e) => failed(e),
    }
}

/// `GET /v1/owners/{owner}/usage/history?from=&to=&granularity=`: every key of one owner
/// together, per period: what the customer is billed on.
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
    history_answer(("owner", &owner), (granularity, from, to), found)
}

/// The query of `/v1/violations`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViolationsQuery {
    key_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /v1/violations?key_id=&from=&to=&after=&limit=`: denials, oldest first; `next` is
/// the `after` of the following page.
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
            Json(json!({"violations": found, "next": next})).into_response()
        }
        Err(e) => failed(e),
    }
}
