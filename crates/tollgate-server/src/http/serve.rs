//! Serving HTTP: hyper-util's server, HTTP/1.1 and HTTP/2 on one port, a connection per
//! task on tokio's multi-thread scheduler, graceful shutdown.
//!
//! hyper-util rather than `axum::serve` because a connection that starts no request for
//! `server.idle_timeout` must be closed, and that is hyper's header read timeout, which
//! `axum::serve` does not expose.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::listen::{self, Capacity};

/// Serves `router` on `listener` until `stopped` turns true, then lets each open connection
/// finish the answer in flight and returns when all have closed.
pub async fn serve(
    listener: TcpListener,
    capacity: Capacity,
    router: Router,
    idle_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(idle_timeout));
    let graceful = GracefulShutdown::new();
    while let Some((conn, peer)) = listen::accept(&listener, &capacity, &mut stopped).await {
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
