//! `GET /v1/live`: the dashboard's overview as Server-Sent Events, one `snapshot` event a
//! second: decisions and denials per second, decision latency percentiles over that
//! second, the counter store's health, and the rules that denied most since the start.
//! Read off the server's own metrics, so watching costs the decision path nothing.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream;
use serde_json::json;

use crate::app::App;

/// How often a snapshot is sent.
const EVERY: Duration = Duration::from_secs(1);

/// How many of the most denying rules a snapshot names.
const TOP: usize = 5;

/// The totals a snapshot is the difference of.
#[derive(Default, Clone)]
struct Totals {
    decisions: f64,
    denials: f64,
    /// The latency histogram's cumulative counts, by upper bound in seconds.
    buckets: Vec<(f64, f64)>,
    denied_by_rule: BTreeMap<String, f64>,
}

/// The value of label `name` in a sample's label text (`a="x",b="y"`).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split("\",").find_map(|pair| {
        let (k, v) = pair.split_once("=\"")?;
        (k.trim_start_matches(',') == name).then(|| v.trim_end_matches('"'))
    })
}

/// The totals in Prometheus text.
fn totals(text: &str) -> Totals {
    let mut t = Totals::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        match name {
            "tollgate_requests_total" => {
                t.decisions += value;
                if label(labels, "code") != Some("OK") {
                    t.denials += value;
                }
            }
            "tollgate_decision_seconds_bucket" => {
                let le = label(labels, "le").map_or(f64::INFINITY, |le| {
                    le.parse::<f64>().unwrap_or(f64::INFINITY)
                });
                t.buckets.push((le, value));
            }
            "tollgate_decisions_total" if label(labels, "outcome") == Some("denied") => {
                if let Some(rule) = label(labels, "rule") {
                    *t.denied_by_rule.entry(rule.to_owned()).or_default() += value;
                }
            }
            _ => {}
        }
    }
    t.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    t
}

/// The upper bound of the bucket holding quantile `q` of the counts `buckets` (cumulative,
/// by bound), in milliseconds; none without counts.
fn quantile_ms(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = total * q;
    buckets
        .iter()
        .find(|(_, count)| *count >= rank)
        .map(|(le, _)| {
            if le.is_finite() {
                le * 1000.0
            } else {
                f64::NAN
            }
        })
        .filter(|ms| !ms.is_nan())
}

/// The counts of `now` less those of `before`, bound by bound.
fn minus(now: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|(le, count)| {
            let was = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, count - was)
        })
        .collect()
}

/// One snapshot: what changed between `before` and `now`, and the store's health.
async fn snapshot(app: &App, before: &Totals, now: &Totals) -> serde_json::Value {
    let store = match app.engine.store().health().await {
        Ok(()) => json!({"healthy": true, "detail": app.engine.store().warning().await}),
        Err(why) => json!({"healthy": false, "detail": why.to_string()}),
    };
    let mut rules: Vec<(&String, &f64)> = now
        .denied_by_rule
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .collect();
    rules.sort_by(|a, b| b.1.total_cmp(a.1));
    let second = minus(&now.buckets, &before.buckets);
    json!({
        "at": tollgate_core::time::now_ms(),
        "decisions_per_second": (now.decisions - before.decisions).max(0.0),
        "denials_per_second": (now.denials - before.denials).max(0.0),
        "decisions_total": now.decisions,
        "denials_total": now.denials,
        "latency_ms": {
            "p50": quantile_ms(&second, 0.5),
            "p99": quantile_ms(&second, 0.99),
        },
        "store": store,
        "top_denied_rules": rules
            .into_iter()
            .take(TOP)
            .map(|(rule, n)| json!({"rule": rule, "denied": n}))
            .collect::<Vec<_>>(),
    })
}

/// `GET /v1/live`: a `snapshot` event a second until the client goes.
#[utoipa::path(
    get,
    path = "/v1/live",
    tag = "live",
    operation_id = "live",
    summary = "The live overview: a `snapshot` event a second (Server-Sent Events)",
    description = "A stream that does not end while the client listens. Each event is named `snapshot`; \
its data is a `LiveSnapshot` in JSON.",
    responses(
        (status = 200, description = "`event: snapshot` with `data:` a `LiveSnapshot`, once a second", body = crate::http::answers::LiveEvent, content_type = "text/event-stream"),
    ),
    security(("adminToken" = [])),
)]
pub async fn live(State(app): State<Arc<App>>) -> Response {
    let first = totals(&app.metrics.render());
    let events = stream::unfold((app, first, true), |(app, before, first)| async move {
        if !first {
            tokio::time::sleep(EVERY).await;
        }
        let now = totals(&app.metrics.render());
        let data = snapshot(&app, &before, &now).await;
        let event = Event::default().event("snapshot").data(data.to_string());
        Some((Ok::<_, Infallible>(event), (app, now, false)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::float_cmp)]

    use super::*;

    #[test]
    fn totals_and_quantiles_are_read_off_the_metrics_text() {
        let text = "# TYPE tollgate_requests_total counter\n\
            tollgate_requests_total{code=\"OK\"} 7\n\
            tollgate_requests_total{code=\"RATE_LIMITED\"} 3\n\
            tollgate_decisions_total{rule=\"per-user\",outcome=\"denied\"} 3\n\
            tollgate_decisions_total{rule=\"per-user\",outcome=\"allowed\"} 7\n\
            tollgate_decision_seconds_bucket{le=\"0.001\"} 8\n\
            tollgate_decision_seconds_bucket{le=\"0.01\"} 10\n\
            tollgate_decision_seconds_bucket{le=\"+Inf\"} 10\n";
        let t = totals(text);
        assert_eq!(t.decisions, 10.0);
        assert_eq!(t.denials, 3.0);
        assert_eq!(t.denied_by_rule["per-user"], 3.0);
        assert_eq!(quantile_ms(&t.buckets, 0.5), Some(1.0));
        assert_eq!(quantile_ms(&t.buckets, 0.99), Some(10.0));
        assert_eq!(quantile_ms(&minus(&t.buckets, &t.buckets), 0.5), None);
    }
}
