//! Active health checks: each origin of an upstream with a `health` section is asked its
//! health path every interval, and one that fails enough checks in a row is left out until
//! it passes enough in a row.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};

use crate::config::HealthConfig;
use crate::forward;
use crate::upstream::Upstream;

/// Checks every origin of `upstream` until the returned task is aborted.
pub fn spawn(upstream: Arc<Upstream>, config: HealthConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let n = upstream.origins().len();
        let mut failed = vec![0u32; n];
        let mut passed = vec![0u32; n];
        let mut every = tokio::time::interval(config.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            for i in 0..n {
                let ok = check(&upstream, i, &config).await;
                let (f, p) = match (failed.get_mut(i), passed.get_mut(i)) {
                    (Some(f), Some(p)) => (f, p),
                    _ => continue,
                };
                if ok {
                    *f = 0;
                    *p = p.saturating_add(1);
                    if *p >= config.healthy_after {
                        upstream.set_checked_down(i, false);
                    }
                } else {
                    *p = 0;
                    *f = f.saturating_add(1);
                    if *f >= config.unhealthy_after {
                        upstream.set_checked_down(i, true);
                    }
                }
            }
        }
    })
}

/// Whether origin `i` answers its health path with a 2xx in time.
async fn check(upstream: &Upstream, i: usize, config: &HealthConfig) -> bool {
    let Some(uri) = upstream
        .origins()
        .get(i)
        .and_then(|o| forward::upstream_uri(&o.uri, &config.path).ok())
    else {
        return false;
    };
    let Ok(req) =
        Request::get(uri).body(Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync())
    else {
        return false;
    };
    match tokio::time::timeout(config.timeout, upstream.client(i).request(req)).await {
        Ok(Ok(res)) => {
            let ok = res.status().is_success();
            // Read to the end, so the connection goes back to the pool.
            let _ = res.into_body().collect().await;
            ok
        }
        _ => false,
    }
}
