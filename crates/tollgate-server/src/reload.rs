//! Hot reload: the configuration file's folder is watched — so editor saves, `mv tmp
//! tollgate.yaml` renames and Kubernetes ConfigMap symlink swaps are all seen — and SIGHUP
//! reloads too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::app::App;

/// Changes closer together than this reload once.
const SETTLE: Duration = Duration::from_millis(100);

/// Starts watching `path` and listening for SIGHUP; returns the watcher, which must be kept
/// alive.
pub fn spawn(app: Arc<App>, path: PathBuf) -> anyhow::Result<notify::RecommendedWatcher> {
    // `true` forces a reload (SIGHUP); a file event reloads only when the content changed.
    let (tx, mut rx) = mpsc::unbounded_channel::<bool>();
    let dir = path
        .parent()
        .map(PathBuf::from)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let watch_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            let _ = watch_tx.send(false);
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;

    #[cfg(unix)]
    {
        let hup_tx = tx.clone();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                let _ = hup_tx.send(true);
            }
        });
    }

    // Read now, before the server says it is listening, so a change made right after
    // start-up is seen as one.
    let mut last = std::fs::read(&path).ok();
    tokio::spawn(async move {
        while let Some(mut force) = rx.recv().await {
            tokio::time::sleep(SETTLE).await;
            while let Ok(f) = rx.try_recv() {
                force |= f;
            }
            // Watching a folder reports its other files too: reload only on a real change.
            let now = std::fs::read(&path).ok();
            if force || (now.is_some() && now != last) {
                last = now;
                let tiers: Vec<String> = app
                    .engine
                    .policy()
                    .tiers()
                    .iter()
                    .map(|t| t.name.clone())
                    .collect();
                if app.reload().is_ok() {
                    warn_of_dropped_tiers(&app, tiers).await;
                }
            }
        }
    });
    Ok(watcher)
}

/// Logs each tier of `before` that the policy now in force has dropped while keys are on
/// it. The file is the operator's own, so the edit stands; its keys get only their own
/// overrides and the policy's rules until they move.
async fn warn_of_dropped_tiers(app: &App, before: Vec<String>) {
    let dropped: Vec<String> = {
        let policy = app.engine.policy();
        before
            .into_iter()
            .filter(|t| policy.tiers().get(t).is_none())
            .collect()
    };
    for tier in &dropped {
        match app.keys_on_tier(tier).await {
            Ok(true) => tracing::warn!(
                tier = %tier,
                "the reloaded policy has no tier {tier:?}, and keys are on it: they get only \
                 their own overrides and the policy's rules until moved (GET /v1/keys?tier={tier})"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(tier = %tier, "cannot tell whether keys are on the dropped tier: {e}")
            }
        }
    }
}
