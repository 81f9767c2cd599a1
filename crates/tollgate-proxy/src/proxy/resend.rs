//! Sending a request again, as a dead letter's replay does: by the route its URL takes now,
//! with that route's tries, and without a dead letter of its own.

use bytes::Bytes;
use http::header::{self, HeaderValue};

use super::{Outbound, Outgoing, Proxy, route_label};
use crate::{forward, retry, routes};

/// A request sent again: a dead letter's.
#[derive(Debug, Clone)]
pub struct Resend {
    /// Its method.
    pub method: String,
    /// The URL the client asked for; it picks the route.
    pub url: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its whole body.
    pub body: Bytes,
}

/// How a request sent again fared.
#[derive(Debug, Clone)]
pub struct Resent {
    /// The status the client would have had.
    pub status: u16,
    /// The route it took.
    pub route: String,
    /// The upstream it went to.
    pub upstream: String,
    /// When the proxy gave up again: how the last try failed, and the tries made.
    pub failure: Option<(String, u32)>,
}

/// Why a request could not be sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// No route takes its URL now.
    #[error("{0}")]
    NoRoute(String),
    /// Its method or URL is not valid.
    #[error("{0}")]
    Invalid(String),
}

impl Proxy {
    /// The longest a replay through any route may take: its route's `total_timeout` bounds
    /// every try and backoff together.
    pub fn longest_resend(&self) -> std::time::Duration {
        self.routes.longest_total_timeout()
    }

    /// Sends a request again (a dead letter's replay) through the route its URL takes now,
    /// with that route's tries, and without the engine's decision nor a dead letter of its
    /// own.
    pub async fn resend(&self, r: &Resend) -> Result<Resent, ResendError> {
        let uri: http::Uri = r
            .url
            .parse()
            .map_err(|_| ResendError::Invalid(format!("{:?} is not a URL", r.url)))?;
        let method = http::Method::from_bytes(r.method.as_bytes())
            .map_err(|_| ResendError::Invalid(format!("{:?} is not a method", r.method)))?;
        let host = uri.host().map(str::to_ascii_lowercase);
        let path = uri.path();
        let (index, route) = self
            .routes
            .find(host.as_deref(), path)
            .ok_or_else(|| ResendError::NoRoute(format!("no proxy route matches {path:?}")))?;
        let upstream = self
            .route_upstream
            .get(index)
            .ok_or_else(|| ResendError::NoRoute(format!("no proxy route matches {path:?}")))?;
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let path_and_query = if route.strip_prefix {
            routes::strip(&route.path_prefix, &path_and_query)
        } else {
            path_and_query
        };
        let mut headers = http::HeaderMap::new();
        for (name, value) in &r.headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        forward::strip_hop_by_hop(&mut headers);
        headers.remove(header::HOST);
        let may_retry =
            route.retry.tries > 1 && (retry::idempotent(&method) || route.retry.non_idempotent);
        let sent = self
            .send(Outbound {
                route,
                upstream,
                method,
                path_and_query,
                headers,
                outgoing: Outgoing::Replay(r.body.clone()),
                tries: if may_retry { route.retry.tries } else { 1 },
                on_upgrade: None,
            })
            .await;
        let status = sent.response.status().as_u16();
        Ok(Resent {
            status,
            route: route_label(route),
            upstream: upstream.name.clone(),
            failure: sent.gave_up.map(|g| (g.failure, g.tries)),
        })
    }
}
