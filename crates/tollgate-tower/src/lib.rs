//! A [`tower_layer::Layer`] that runs Tollgate's decision path in-process, in front of an
//! axum router, a tonic server or any `http` service: the same [`Engine`] as the server's
//! doors, on the memory store or Redis, under the same policy YAML.
//!
//! [`TollgateLayer`] reads the request's attributes under forward-auth's names (`ip`,
//! `method`, `path`, `user`, `tenant`, `attr.NAME`) and its API key, asks the engine, and
//! either passes the request on, adding the rate-limit headers to its response, or answers
//! it: problem+json with the server's `type`s and statuses, or for gRPC a status in
//! trailers-only form. Concurrency leases are released when the response body ends or is
//! dropped.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use tollgate_core::{MemoryStore, Policy};
//! use tollgate_engine::{Engine, EngineConfig};
//! use tollgate_tower::{TollgateLayer, TollgateUser};
//! use tower::{Layer, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let policy = Policy::from_yaml("rules: [{name: per-user, key: '{user}', limit: 1, period: 1m}]")?;
//! let engine = Arc::new(Engine::new(MemoryStore::default(), policy, EngineConfig::default()));
//! let layer = TollgateLayer::new(engine);
//! let app = tower::service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, Infallible>(http::Response::new(String::from("hello")))
//! });
//! let request = || {
//!     let mut req = http::Request::new(String::new());
//!     req.extensions_mut().insert(TollgateUser("alice".into()));
//!     req
//! };
//! let first = layer.layer(app.clone()).oneshot(request()).await?;
//! assert_eq!(first.status(), 200);
//! assert_eq!(first.headers()["ratelimit"], "\"per-user\";r=0;t=60");
//! let second = layer.layer(app).oneshot(request()).await?;
//! assert_eq!(second.status(), 429);
//! assert_eq!(second.headers()["content-type"], "application/problem+json");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! With axum, add it with `Router::layer` and serve with
//! `into_make_service_with_connect_info::<SocketAddr>()` so that the client's address is
//! known; with tonic, `Server::builder().layer(...)`. See `docs/tower.md`.
//!
//! [`Engine`]: tollgate_engine::Engine

mod answer;
mod body;
mod error;
mod extract;
mod layer;

pub use body::TollgateBody;
pub use error::BuildError;
pub use extract::{PeerAddr, TollgateUser};
pub use layer::{Builder, ResponseFuture, Tollgate, TollgateLayer};
