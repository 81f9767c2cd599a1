//! Serving one worker's connections: hyper driven directly, each connection with its own
//! service.
//!
//! `axum::serve` did the same through an adapter that cloned the service for every request
//! and wrapped its call in a `Oneshot` (hyper calls a service by shared reference, tower by
//! exclusive one). A connection owns its service here and borrows it mutably per request;
//! and HTTP/1 answers go out in one flat write. HTTP/2 (prior knowledge) is served as before.

use std::cell::RefCell;
use std::convert::Infallible;

use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::watch;
use tower::Service as _;

use super::{Routes, Served};
use crate::spread::Inbox;

/// Serves the connections `inbox` hands over until `stopped` turns true, then lets those
/// open finish what they are serving (each closes after its answer in flight) and returns
/// when all have closed.
pub async fn serve(mut inbox: Inbox, routes: Routes, mut stopped: watch::Receiver<bool>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The answer of a decision is a few hundred bytes: copied behind its head, it leaves in
    // one plain write.
    builder.http1().writev(false);
    let graceful = GracefulShutdown::new();
    loop {
        let (conn, peer) = tokio::select! {
            biased;
            _ = stopped.wait_for(|s| *s) => break,
            next = inbox.next() => next,
        };
        let served = routes.for_peer(peer);
        let service = PerConnection {
            spare: served.clone(),
            served: RefCell::new(served),
        };
        let connection = builder
            .serve_connection(TokioIo::new(conn), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(inbox);
    graceful.shutdown().await;
}

/// One connection's service. hyper calls it by shared reference, one request at a time
/// for HTTP/1 and from the connection's own task for HTTP/2, so the borrow never clashes;
/// were it ever to, the call goes to a clone of the spare.
struct PerConnection {
    served: RefCell<Served>,
    spare: Served,
}

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = <Served as tower::Service<Request<Body>>>::Future;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let req = req.map(Body::new);
        // Every layer of `Served` is always ready (none holds back capacity), so `call`
        // needs no `poll_ready` first.
        match self.served.try_borrow_mut() {
            Ok(mut served) => served.call(req),
            Err(_) => self.spare.clone().call(req),
        }
    }
}
