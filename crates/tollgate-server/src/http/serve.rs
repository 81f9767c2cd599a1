//! Serving HTTP: hyper-util's server, HTTP/1.1 and HTTP/2 on one port (HTTP/2 with prior
//! knowledge on plain TCP, or by ALPN over TLS), a connection per task on the worker's
//! runtime (`workers`), graceful shutdown.
//!
//! hyper-util rather than `axum::serve` because a connection that starts no request for
//! `server.idle_timeout` must be closed, and that is hyper's header read timeout, which
//! `axum::serve` does not expose.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use crate::app::App;
use crate::listen;
use crate::telemetry::{propagate, sample};

/// Serves `router` on `listener` until `stopped` turns true, then lets each open connection
/// finish the answer in flight and returns when all have closed.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    router: Router,
    idle_timeout: Duration,
    stopped: watch::Receiver<bool>,
) {
    let door = app.clone();
    serve_with(&app, listener, None, idle_timeout, stopped, move |peer| {
        let (app, router) = (door.clone(), router.clone());
        service_fn(move |req: Request<Incoming>| {
            let (app, router) = (app.clone(), router.clone());
            async move { Ok::<_, Infallible>(super::direct::answer(&app, router, peer, req).await) }
        })
    })
    .await;
}

/// Serves the reverse proxy on `listener`, as [`serve`] serves the API, over TLS when
/// `tls` is given.
pub async fn serve_proxy(
    app: Arc<App>,
    proxy: Arc<tollgate_proxy::Proxy>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    idle_timeout: Duration,
    stopped: watch::Receiver<bool>,
) {
    let door = app.clone();
    serve_with(&app, listener, tls, idle_timeout, stopped, move |peer| {
        let (app, proxy) = (door.clone(), proxy.clone());
        service_fn(move |req: Request<Incoming>| {
            let (app, proxy) = (app.clone(), proxy.clone());
            async move {
                if !crate::telemetry::on() {
                    return Ok::<_, Infallible>(
                        super::proxied::answer(&app, &proxy, req, peer).await,
                    );
                }
                let traced = sample::decide(propagate::traceparent(req.headers()));
                if !traced {
                    let res = super::proxied::answer(&app, &proxy, req, peer);
                    return Ok(sample::within(false, res).await);
                }
                let res = sample::within(true, async {
                    let span = tracing::info_span!(
                        target: crate::telemetry::TRACE,
                        "door",
                        otel.name = format!("proxy {}", req.method()).as_str(),
                        otel.kind = "server",
                        url.path = req.uri().path(),
                        http.response.status_code = tracing::field::Empty,
                    );
                    propagate::adopt(&span, req.headers());
                    let res = super::proxied::answer(&app, &proxy, req, peer)
                        .instrument(span.clone())
                        .await;
                    span.record(
                        "http.response.status_code",
                        i64::from(res.status().as_u16()),
                    );
                    res
                })
                .await;
                Ok(res)
            }
        })
    })
    .await;
}

/// Serves each connection of `listener` with the service `service` makes for its peer:
/// HTTP/1.1 or HTTP/2 as the client's first bytes say, after a TLS handshake when `tls` is
/// given (whose ALPN offers both).
async fn serve_with<S, B>(
    app: &App,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    idle_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
    service: impl Fn(std::net::SocketAddr) -> S,
) where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = hyper::Response<B>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
    let capacity = app.connections.clone();
    let shared = Arc::new(builder.clone());
    while let Some((conn, peer)) = listen::accept(&listener, &capacity, &mut stopped).await {
        if let Some(acceptor) = &tls {
            let (acceptor, builder, watcher) =
                (acceptor.clone(), shared.clone(), graceful.watcher());
            let service = service(peer);
            tokio::spawn(async move {
                // A client that never finishes its handshake holds its place no longer
                // than one that never starts a request.
                let stream = match tokio::time::timeout(idle_timeout, acceptor.accept(conn)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                if let Err(e) = watcher.watch(connection).await {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
            });
            continue;
        }
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), service(peer))
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
