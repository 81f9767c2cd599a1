//! The HTTP door on one single-threaded tokio runtime per core, all accepting on the one
//! listening socket, the way nginx runs a worker per core: a new connection goes to the
//! worker that wakes first to take it, the least busy. (One socket rather than one per
//! worker with `SO_REUSEPORT`, so that a second server started on a taken address still
//! fails to bind.)
//!
//! This replaces serving every connection on tokio's multi-thread scheduler, whose
//! work-stealing wakes idle workers across cores: on the load of `bench/http.sh`, the
//! per-core runtimes answer decisions at a markedly higher rate (docs/benchmarks.md,
//! "What the hand-made pieces earn"). The gRPC door, the admin's background jobs and the
//! effects writer stay on the multi-thread runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::http;

/// What a door's workers serve.
#[derive(Clone)]
pub enum Door {
    /// The API and forward-auth.
    Api(Router),
    /// The reverse proxy, over TLS when it has an acceptor.
    Proxy(
        Arc<tollgate_proxy::Proxy>,
        Option<tokio_rustls::TlsAcceptor>,
    ),
}

/// Serves `door` on `listener` with a worker per core until `stopped` turns true; the
/// returned task ends once every worker has let its connections finish. Returns the
/// address listened on too.
pub fn spawn(
    app: &Arc<App>,
    listener: TcpListener,
    door: Door,
    idle_timeout: Duration,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let listener = listener.into_std()?;
    let door_name = match door {
        Door::Api(_) => "http",
        Door::Proxy(..) => "proxy",
    };
    let mut threads = Vec::with_capacity(cores);
    for i in 0..cores {
        let listener = listener.try_clone()?;
        let (app, door, stopped) = (app.clone(), door.clone(), stopped.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting an HTTP worker's runtime")?;
        let thread = std::thread::Builder::new()
            .name(format!("tollgate-{}-{i}", door_name))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => match door {
                            Door::Api(router) => {
                                http::serve::serve(app, listener, router, idle_timeout, stopped)
                                    .await;
                            }
                            Door::Proxy(proxy, tls) => {
                                http::serve::serve_proxy(
                                    app,
                                    proxy,
                                    listener,
                                    tls,
                                    idle_timeout,
                                    stopped,
                                )
                                .await;
                            }
                        },
                        Err(e) => tracing::error!(error = %e, "an HTTP worker could not listen"),
                    }
                });
            })
            .context("starting an HTTP worker")?;
        threads.push(thread);
    }
    let done = tokio::task::spawn_blocking(move || {
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("an HTTP worker panicked");
            }
        }
    });
    Ok((addr, done))
}
