//! Tollgate's reverse proxy: requests routed by host and path prefix to upstream pools,
//! each try on an origin chosen by least requests or in turn, failed tries retried with
//! jittered backoff under a retry budget and the upstream's own `Retry-After`, a circuit
//! breaker and passive health per upstream, and upstream credentials chosen by the quota
//! the upstream reports; requests that could not be delivered kept as dead letters to be
//! replayed; HTTP/2 without TLS to `h2c` origins; TLS on its own listener.
//!
//! The proxy decides nothing about limits: `tollgate serve` puts the engine's decision in
//! front of it (see the server's `proxy` module), so a request is limited exactly as on
//! every other door before it is forwarded.

pub mod breaker;
pub mod client;
pub mod config;
pub mod dead_letter;
pub mod forward;
pub mod health;
pub mod keys;
pub mod metrics;
mod proxy;
pub mod retry;
pub mod routes;
pub mod tls;
pub mod upstream;

pub use config::ProxyConfig;
pub use proxy::{Proxy, Resend, ResendError, Resent, problem, route_label};

/// The error type of bodies the proxy relays.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of the requests the proxy sends and the responses it answers.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
