//! The server's background work: the fleet's leader (pruning old records, closing
//! billing periods, evaluating alerts), sweeping idle counters, folding metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::app::App;

/// The lease naming the instance that runs a fleet's periodic work.
const LEADER: &str = "leader";
/// How often old records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// How often finished billing periods are looked for.
const CLOSE_EVERY: Duration = Duration::from_secs(60);

/// This instance's name among the fleet's: host, process and start time.
pub fn instance_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "tollgate".into());
        format!(
            "{host}-{}-{}",
            std::process::id(),
            tollgate_core::time::now_ms()
        )
    })
    .clone()
}

/// Runs the fleet's periodic work (pruning old records, closing billing periods,
/// evaluating alerts) on one instance: the holder of a lease in the database, which passes
/// to another instance when its holder has not renewed it for `lease`.
pub fn leader(
    app: Arc<App>,
    registry: tollgate_registry::Registry,
    retention: tollgate_registry::Retention,
    lease: Duration,
) {
    let me = instance_name();
    let leading = Arc::new(AtomicBool::new(false));
    if let Some(alerts) = app.alerts.clone() {
        evaluator(app.clone(), registry.clone(), alerts, Arc::clone(&leading));
    }
    tokio::spawn(async move {
        // Renewed three times a lease, so that one slow renewal does not lose it.
        let mut tick = tokio::time::interval(lease.checked_div(3).unwrap_or(lease));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pruned_at: Option<tokio::time::Instant> = None;
        let mut closed_at: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            let now = tollgate_core::time::now_ms();
            let held = match registry.acquire_lease(LEADER, &me, lease, now).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the leader lease failed");
                    false
                }
            };
            if held != leading.swap(held, Ordering::Relaxed) {
                tracing::info!(instance = %me, leading = held, "leadership changed");
            }
            metrics::gauge!("tollgate_leader").set(if held { 1.0 } else { 0.0 });
            if !held {
                continue;
            }
            export_queue(&registry, now).await;
            if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(tokio::time::Instant::now());
                prune(&registry, &retention).await;
            }
            if let Some(b) = &app.billing
                && closed_at.is_none_or(|t| t.elapsed() >= CLOSE_EVERY)
            {
                closed_at = Some(tokio::time::Instant::now());
                match crate::billing::close::close_due(&registry, b, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(records = n, "billing periods closed"),
                    Err(e) => tracing::warn!(error = %e, "closing billing periods failed"),
                }
            }
        }
    });
}

/// Evaluates the alert rules every `alerts.evaluate_every` while this instance leads, and
/// wakes its delivery worker when an alert changed.
fn evaluator(
    app: Arc<App>,
    registry: tollgate_registry::Registry,
    alerts: Arc<crate::alerts::AlertSettings>,
    leading: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        let mut evaluator = crate::alerts::evaluate::Evaluator::new(
            Arc::clone(&alerts),
            app.billing.clone(),
            Arc::clone(&app.slo),
        );
        let mut tick = tokio::time::interval(alerts.evaluate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !leading.load(Ordering::Relaxed) {
                continue;
            }
            let now = tollgate_core::time::now_ms();
            if evaluator.run(&registry, app.engine.store(), now).await > 0 {
                app.deliveries.notify_one();
            }
        }
    });
}

/// The job queue's depth per state and its oldest job's age, as the fleet's leader sees
/// them (one instance exports them, so that sums over instances do not double them).
async fn export_queue(registry: &tollgate_registry::Registry, now: i64) {
    let Ok(counts) = registry.job_counts().await else {
        return;
    };
    for state in [
        tollgate_registry::JobState::Queued,
        tollgate_registry::JobState::Running,
        tollgate_registry::JobState::Dead,
    ] {
        let c = counts.iter().find(|c| c.state == state);
        let depth = c.map_or(0, |c| c.count);
        let age = c
            .and_then(|c| c.oldest)
            .map_or(0, |oldest| now.saturating_sub(oldest).max(0));
        metrics::gauge!("tollgate_jobs", "state" => state.name()).set(depth as f64);
        metrics::gauge!("tollgate_jobs_oldest_age_seconds", "state" => state.name())
            .set(age as f64 / 1_000.0);
    }
}

/// How long objectives' counts are kept: the longest budget window, and a day.
const SLO_KEPT_MS: i64 = 31 * 86_400_000;

async fn prune(registry: &tollgate_registry::Registry, retention: &tollgate_registry::Retention) {
    let before = tollgate_core::time::now_ms().saturating_sub(SLO_KEPT_MS);
    if let Err(e) = registry.prune_slo(before).await {
        tracing::warn!(error = %e, "pruning objectives' counts failed");
    }
    match registry
        .prune(retention, tollgate_core::time::now_ms())
        .await
    {
        Ok(p) => tracing::info!(
            events = p.events,
            rollups = p.rollups,
            violations = p.violations,
            audit = p.audit,
            billing = p.billing,
            jobs = p.jobs,
            dead_letters = p.dead_letters,
            "old records pruned"
        ),
        Err(e) => tracing::warn!(error = %e, "pruning old records failed"),
    }
}

/// Keeps the live-counter gauge current and frees idle counters' boxed states.
pub fn sweeper(app: Arc<App>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let swept = app.clone();
            let live = tokio::task::spawn_blocking(move || {
                let now = swept.engine.now();
                swept.engine.store().sweep(now)
            })
            .await
            .ok()
            .flatten();
            if let Some(live) = live {
                metrics::gauge!("tollgate_live_counters").set(live as f64);
            }
            app.engine.store().export_metrics();
        }
    });
}

/// Folds recorded histogram samples into their buckets, so that they take no more memory
/// between scrapes than a second's worth.
pub fn upkeep(metrics: metrics_exporter_prometheus::PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    });
}
