//! The server's background jobs: pruning old records, sweeping idle counters, folding
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

/// Prunes old records at start and every hour.
pub fn pruner(registry: tollgate_registry::Registry, retention: tollgate_registry::Retention) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3_600));
        loop {
            every.tick().await;
            match registry
                .prune(&retention, tollgate_core::time::now_ms())
                .await
            {
                Ok(p) => tracing::info!(
                    events = p.events,
                    rollups = p.rollups,
                    violations = p.violations,
                    audit = p.audit,
                    "old records pruned"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning old records failed"),
            }
        }
    });
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
