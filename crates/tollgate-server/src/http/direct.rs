//! The two decision routes, served before the router.
//!
//! A request through axum's router has its path matched, a `MatchedPath` extension
//! inserted, the route's service cloned into a box and its future wrapped twice: about a
//! tenth of what a whole `GET /v1/authorize` costs. `POST /v1/check` and `/v1/authorize`
//! are most of the traffic, so they are recognised by their exact path and handed to their
//! handlers directly; everything else, including other methods on `/v1/check` (a 405 with
//! `Allow`), goes through the router as before, with the peer as a `ConnectInfo` extension.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request};
use axum::http::Method;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use pin_project_lite::pin_project;
use tower::Service;

use super::{authorize, check};
use crate::app::App;

/// The path of `POST /v1/check`.
pub const CHECK: &str = "/v1/check";
/// The path of `/v1/authorize`.
pub const AUTHORIZE: &str = "/v1/authorize";

/// The router, with `POST /v1/check` and `/v1/authorize` taken before it, for one
/// connection.
#[derive(Clone)]
pub struct Direct {
    app: &'static App,
    routes: Router,
    peer: SocketAddr,
}

impl Direct {
    /// Serves `routes` to a connection from `peer`, taking the decision routes first.
    pub fn new(app: &'static App, routes: Router, peer: SocketAddr) -> Self {
        Direct { app, routes, peer }
    }
}

type Handled = Pin<Box<dyn Future<Output = Response> + Send>>;

impl Service<Request<Body>> for Direct {
    type Response = Response;
    type Error = Infallible;
    type Future = DirectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> DirectFuture {
        let path = req.uri().path();
        if path == CHECK && req.method() == Method::POST {
            let handled = Box::pin(check::serve(self.app, req));
            DirectFuture::Handled { handled }
        } else if path == AUTHORIZE {
            let query = Query::try_from_uri(req.uri());
            let handled = Box::pin(authorize::authorize(self.app, self.peer, query, req));
            DirectFuture::Handled { handled }
        } else {
            req.extensions_mut().insert(ConnectInfo(self.peer));
            DirectFuture::Routed {
                routed: self.routes.call(req),
            }
        }
    }
}

pin_project! {
    /// The future of [`Direct`].
    #[project = DirectProj]
    pub enum DirectFuture {
        Handled { handled: Handled },
        Routed { #[pin] routed: RouteFuture<Infallible> },
    }
}

impl Future for DirectFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DirectProj::Handled { handled } => handled.as_mut().poll(cx).map(Ok),
            DirectProj::Routed { routed } => routed.poll(cx),
        }
    }
}
