//! An objective's standing: its budget over its window and its burn rates, from the
//! fleet's counts in the registry or, without one, this instance's.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tollgate_registry::{Registry, RegistryError};

use super::burn::{self, WINDOWS};
use super::{Kind, Objective, Requests, SloSettings};

const MINUTE_MS: i64 = 60_000;
/// How much of the recent past each instance writes again on each flush: the minute
/// under way and the one before, which requests in flight may still add to.
const REWRITE_MS: i64 = 2 * MINUTE_MS;

/// Whose requests a standing counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every instance's, summed in the registry.
    Fleet,
    /// This instance's alone.
    Instance,
}

/// One window's burn rate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowBurn {
    /// `5m`, `1h`, …
    pub window: &'static str,
    /// Requests in it.
    pub total: u64,
    /// The burn rate (1 spends the budget exactly over the objective's window).
    pub burn_rate: f64,
}

/// An objective's standing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Standing {
    /// The objective.
    pub name: String,
    /// `route` or `door`, as configured.
    pub requests: String,
    /// `availability`, or `latency` with its threshold in ms.
    pub kind: &'static str,
    /// The latency threshold (ms), for latency objectives.
    pub latency_ms: Option<f64>,
    /// The share that must be good.
    pub target: f64,
    /// The budget's window (s).
    pub window_seconds: u64,
    /// Whose requests.
    pub scope: Scope,
    /// Good requests over the window.
    pub good: u64,
    /// All requests over the window.
    pub total: u64,
    /// `good / total` (1 with no request).
    pub compliance: f64,
    /// The share of the window's budget left (negative once overspent).
    pub error_budget_remaining: f64,
    /// Burn rates per window.
    pub burn_rates: Vec<WindowBurn>,
    /// The window pairs burning past their factor (`1h/5m`, …).
    pub burning: Vec<String>,
}

/// `o`'s standing at `now`, from the registry when given.
pub async fn standing(
    o: &Objective,
    registry: Option<&Registry>,
    now: i64,
) -> Result<Standing, RegistryError> {
    let to = now.saturating_add(1);
    // The objective's window, then each burn window, read at one instant.
    let froms: Vec<i64> = std::iter::once(burn::before(now, o.window))
        .chain(burn::starts(now))
        .collect();
    let sums = match registry {
        Some(r) => r.slo_sums_since(&o.name, &froms, to).await?,
        None => o.minutes.sums_since(&froms, to),
    };
    let (good, total) = sums.first().copied().unwrap_or((0, 0));
    let burn_rates: Vec<WindowBurn> = WINDOWS
        .iter()
        .zip(sums.iter().skip(1))
        .map(|((window, _), &(g, t))| WindowBurn {
            window,
            total: t,
            burn_rate: burn::burn_rate(g, t, o.target),
        })
        .collect();
    let rate = |w: &str| {
        burn_rates
            .iter()
            .find(|b| b.window == w)
            .map_or(0.0, |b| b.burn_rate)
    };
    let burning = burn::burning(rate)
        .iter()
        .map(|p| format!("{}/{}", p.long, p.short))
        .collect();
    Ok(Standing {
        name: o.name.clone(),
        requests: match &o.requests {
            Requests::Path(p) => p.clone(),
            Requests::Prefix(p) => format!("{p}*"),
            Requests::Grpc => "grpc".into(),
        },
        kind: match o.kind {
            Kind::Availability => "availability",
            Kind::Latency(_) => "latency",
        },
        latency_ms: match o.kind {
            Kind::Latency(d) => Some(d.as_secs_f64() * 1_000.0),
            Kind::Availability => None,
        },
        target: o.target,
        window_seconds: o.window.as_secs(),
        scope: if registry.is_some() {
            Scope::Fleet
        } else {
            Scope::Instance
        },
        good,
        total,
        compliance: if total == 0 {
            1.0
        } else {
            good as f64 / total as f64
        },
        error_budget_remaining: burn::budget_left(good, total, o.target),
        burn_rates,
        burning,
    })
}

/// Every few seconds: writes this instance's recent minutes to the registry (when there is
/// one), and exports each objective's burn rates and budget as this instance sees them.
pub fn spawn(slo: Arc<SloSettings>, registry: Option<Registry>, instance: String) {
    if slo.objectives.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(slo.flush_every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = tollgate_core::time::now_ms();
            for o in &slo.objectives {
                if let Some(r) = &registry {
                    let recent = o
                        .minutes
                        .since(now.saturating_sub(REWRITE_MS), now.saturating_add(1));
                    if let Err(e) = r.put_slo_minutes(&o.name, &instance, &recent).await {
                        tracing::warn!(objective = %o.name, error = %e, "storing objective counts failed");
                    }
                }
                metrics::gauge!("tollgate_slo_target_ratio", "objective" => o.name.clone())
                    .set(o.target);
                // This instance's view: fleet-wide figures come from summing the
                // `tollgate_slo_requests_total` counters, or from `GET /v1/slo`.
                if let Ok(s) = standing(o, None, now).await {
                    for b in &s.burn_rates {
                        metrics::gauge!("tollgate_slo_burn_rate", "objective" => o.name.clone(), "window" => b.window)
                            .set(b.burn_rate);
                    }
                    metrics::gauge!("tollgate_slo_error_budget_remaining_ratio", "objective" => o.name.clone())
                        .set(s.error_budget_remaining);
                }
            }
        }
    });
}
