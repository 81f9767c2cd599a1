//! The two decision routes, served before the router.
//!
//! A request through axum's router has its path matched, a `MatchedPath` extension
//! inserted, the route's service cloned into a box and its future wrapped twice: about a
//! tenth of what a whole `GET /v1/authorize` costs. `POST /v1/check` and `/v1/authorize`
//! are most of the traffic, so they are recognised by their exact path and handed to their
//! handlers directly; everything else, including other methods on `/v1/check` (a 405 with
//! `Allow`), goes through the router as before.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use pin_project_lite::pin_project;
use tower::Service;

use super::problem::Problem;
use super::{authorize, check};
use crate::app::App;

/// The router, with `POST /v1/check` and `/v1/authorize` taken before it.
#[derive(Clone)]
pub struct Direct {
    app: Arc<App>,
    routes: Router,
}

impl Direct {
    /// Serves `routes`, taking the decision routes first.
    pub fn new(app: Arc<App>, routes: Router) -> Self {
        Direct { app, routes }
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

    fn call(&mut self, req: Request<Body>) -> DirectFuture {
        let path = req.uri().path();
        if path == "/v1/check" && req.method() == Method::POST {
            let handled = Box::pin(check::check(State(self.app.clone()), req));
            DirectFuture::Handled { handled }
        } else if path == "/v1/authorize" {
            let handled = authorize_direct(self.app.clone(), req);
            DirectFuture::Handled { handled }
        } else {
            DirectFuture::Routed {
                routed: self.routes.call(req),
            }
        }
    }
}

/// `/v1/authorize` with its arguments taken as its extractors would take them.
fn authorize_direct(app: Arc<App>, req: Request) -> Handled {
    let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        // Every connection is served with its peer; a request without one is a wiring bug.
        let problem = Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            Some("the connection's peer address is missing".into()),
        );
        return Box::pin(std::future::ready(problem.into_response()));
    };
    let query = Query::try_from_uri(req.uri());
    Box::pin(authorize::authorize(State(app), peer, query, req))
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
