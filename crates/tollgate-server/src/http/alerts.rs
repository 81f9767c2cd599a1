//! `GET /v1/alerts`: the rules, the alerts firing now and the history of changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_registry::AlertFilter;

use super::answers::Alerts;
use super::keys::{failed, keys_off};
use super::query::Query;
use crate::alerts::{AlertRule, RuleKind, UsageLimit};
use crate::app::App;

/// The query of `GET /v1/alerts`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// Only this rule's alerts and events.
    rule: Option<String>,
    /// Events before this id: the `next_before` of the previous page.
    before: Option<i64>,
    /// At most this many events (default 100; taken as 1 to 1000).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// `GET /v1/alerts?rule=&before=&limit=`: the configured rules, the alerts firing now, and
/// a page of fired and resolved events, newest first (`next_before` pages on).
#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "alerts",
    operation_id = "list_alerts",
    summary = "Alert rules, the alerts firing now, and their history",
    params(AlertsQuery),
    responses((status = 200, description = "The rules, the firing alerts and a page of events", body = Alerts)),
    security(("adminToken" = [])),
)]
pub async fn list(State(app): State<Arc<App>>, Query(q): Query<AlertsQuery>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let filter = AlertFilter {
        rule: q.rule.clone(),
        before: q.before,
        limit: q.limit,
    };
    let found = tokio::try_join!(
        reg.firing_alerts(q.rule.as_deref()),
        reg.alert_history(&filter)
    );
    let (firing, events) = match found {
        Ok(found) => found,
        Err(e) => return failed(e),
    };
    let limit = usize::try_from(filter.limit.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
    let next_before = (events.len() >= limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let rules: Vec<Value> = app
        .alerts
        .as_ref()
        .map(|a| a.rules.iter().map(describe).collect())
        .unwrap_or_default();
    Json(Alerts {
        rules,
        firing,
        events,
        next_before,
    })
    .into_response()
}

/// A rule as the API shows it.
fn describe(rule: &AlertRule) -> Value {
    let watches = match &rule.kind {
        RuleKind::Usage { per, percent, of } => json!({
            "usage": {
                "per": per.name(),
                "percent": percent,
                "of": match of {
                    UsageLimit::Included => json!("included"),
                    UsageLimit::Units(n) => json!(n),
                },
            }
        }),
        RuleKind::Denials {
            per_rule,
            at_least,
            window,
        } => json!({"denials": {
            "per": if *per_rule { "rule" } else { "key" },
            "at_least": at_least,
            "window_seconds": window.as_secs(),
        }}),
        RuleKind::Spike {
            factor,
            at_least,
            half_life,
        } => json!({"spike": {
            "factor": factor,
            "at_least": at_least,
            "half_life_seconds": half_life.as_secs(),
        }}),
        RuleKind::Failing(d) => json!({ "failing": d.name() }),
        RuleKind::Burn { objective } => json!({ "slo": objective }),
    };
    let mut v = json!({
        "name": rule.name,
        "severity": rule.severity.as_str(),
        "channels": rule.channels,
        "outreach": rule.outreach,
    });
    if let (Some(obj), Some(w)) = (v.as_object_mut(), watches.as_object()) {
        obj.extend(w.clone());
    }
    v
}
