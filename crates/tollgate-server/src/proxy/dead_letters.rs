//! The writer of the reverse proxy's dead letters: it takes them from the proxy's bounded
//! queue and stores them in batches, off the requests' path; on shutdown, what is queued
//! is stored before it ends.

use tokio::sync::{mpsc, watch};
use tollgate_proxy::dead_letter::DeadLetter;
use tollgate_registry::{NewDeadLetter, Registry};

/// The most letters written in one transaction.
const BATCH: usize = 100;

/// Stores the letters of `queue` in `registry` until `stopped` turns true, then stores what
/// is left in it and returns.
pub async fn run(
    registry: Registry,
    mut queue: mpsc::Receiver<DeadLetter>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            got = queue.recv() => got,
            _ = stopped.wait_for(|s| *s) => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![record(first)];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(l) => batch.push(record(l)),
                Err(_) => break,
            }
        }
        store(&registry, &batch).await;
    }
    let mut rest = Vec::new();
    while let Ok(l) = queue.try_recv() {
        rest.push(record(l));
    }
    for batch in rest.chunks(BATCH) {
        store(&registry, batch).await;
    }
}

async fn store(registry: &Registry, batch: &[NewDeadLetter]) {
    if let Err(e) = registry.put_dead_letters(batch).await {
        metrics::counter!("tollgate_proxy_dead_letters_dropped_total")
            .increment(u64::try_from(batch.len()).unwrap_or(u64::MAX));
        tracing::error!(error = %e, letters = batch.len(), "dead letters could not be stored");
    }
}

fn record(l: DeadLetter) -> NewDeadLetter {
    NewDeadLetter {
        at: l.at,
        route: l.route,
        upstream: l.upstream,
        method: l.method,
        url: l.url,
        headers: l.headers,
        body: l.body.to_vec(),
        body_truncated: l.body_truncated,
        tries: l.tries,
        last_failure: l.last_failure,
    }
}
