//! One request through the proxy: its route, its body kept for replays when it may be
//! tried again, then tries on the upstream's origins under the breaker, the retry budget,
//! the upstream's own `Retry-After` and the route's deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tollgate_core::policy::matcher::Cidr;

use crate::breaker::Admit;
use crate::config::{ProxyConfig, RouteConfig};
use crate::dead_letter::{self, Chained, DeadLetter, Prefix, Sink};
use crate::forward::{self, Client};
use crate::metrics::Outcome;
use crate::retry;
use crate::routes::{self, RouteTable};
use crate::upstream::{Upstream, UpstreamError};
use crate::{BoxError, ProxyBody};

mod resend;
pub use resend::{Resend, ResendError, Resent};

/// Where problem types are documented (the server's own answers use the same).
const TYPE_BASE: &str = "https://tollgate.dev/problems/";

/// The reverse proxy: routes, upstream pools and the peers it trusts.
#[derive(Debug)]
pub struct Proxy {
    routes: RouteTable,
    /// For each route, its upstream.
    route_upstream: Vec<Arc<Upstream>>,
    upstreams: Vec<Arc<Upstream>>,
    trusted: Vec<Cidr>,
    /// `https` when the listener speaks TLS, for `X-Forwarded-Proto`.
    proto: &'static str,
    /// Where dead letters go, when something stores them.
    dead_letters: Option<Sink>,
}

/// A body kept whole for replays, or one streamed to a single try.
enum Outgoing {
    Replay(Bytes),
    Stream(Option<ProxyBody>),
}

/// A request on its way to an upstream.
struct Outbound<'a> {
    route: &'a RouteConfig,
    upstream: &'a Arc<Upstream>,
    method: http::Method,
    path_and_query: String,
    headers: http::HeaderMap,
    outgoing: Outgoing,
    tries: u32,
    on_upgrade: Option<OnUpgrade>,
}

/// The answer for the client and, when the proxy gave up on the upstream, why.
struct Sent {
    response: Response<ProxyBody>,
    gave_up: Option<GaveUp>,
}

/// How the tries of a request that was given up ended.
struct GaveUp {
    failure: String,
    tries: u32,
}

impl Sent {
    fn answered(response: Response<ProxyBody>) -> Self {
        Sent {
            response,
            gave_up: None,
        }
    }

    fn gave_up(response: Response<ProxyBody>, failure: String, tries: u32) -> Self {
        Sent {
            response,
            gave_up: Some(GaveUp { failure, tries }),
        }
    }
}

/// How one try ended.
enum Tried {
    /// The upstream answered (any status).
    Answer(Response<hyper::body::Incoming>),
    /// No answer: a connection or protocol error before the response's head.
    Failed(String),
    /// No answer within the try's time.
    TimedOut,
}

impl Proxy {
    /// The proxy `config` describes; `trusted` are the peers whose forwarding headers are
    /// believed (the server's `trusted_proxies`).
    pub fn new(config: &ProxyConfig, trusted: Vec<Cidr>) -> Result<Self, UpstreamError> {
        let epoch = Instant::now();
        let mut upstreams = Vec::new();
        let mut by_name = std::collections::BTreeMap::new();
        for (name, u) in &config.upstreams {
            let up = Arc::new(Upstream::new(name, u, epoch)?);
            by_name.insert(name.clone(), up.clone());
            upstreams.push(up);
        }
        let mut routes = Vec::new();
        let mut route_upstream = Vec::new();
        // Parsing checked that every route names an upstream; one that does not is left out.
        for r in &config.routes {
            if let Some(up) = by_name.get(&r.upstream) {
                routes.push(r.clone());
                route_upstream.push(up.clone());
            }
        }
        Ok(Proxy {
            routes: RouteTable::new(routes),
            route_upstream,
            upstreams,
            trusted,
            proto: if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            dead_letters: None,
        })
    }

    /// The proxy, posting the dead letters of the routes that keep them to `sink`; without
    /// a sink, no route keeps any.
    #[must_use]
    pub fn with_dead_letters(mut self, sink: Sink) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// The upstream pools.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Starts the active health checks of the upstreams that ask for them; they run until
    /// the returned tasks are aborted.
    pub fn spawn_health_checks(&self, config: &ProxyConfig) -> Vec<tokio::task::JoinHandle<()>> {
        self.upstreams
            .iter()
            .filter_map(|u| {
                let health = config.upstreams.get(&u.name)?.health.clone()?;
                Some(crate::health::spawn(u.clone(), health))
            })
            .collect()
    }

    /// Sets each upstream's breaker gauge; cheap enough for every scrape.
    pub fn report_breakers(&self) {
        let now = Instant::now();
        for u in &self.upstreams {
            let state = u.breaker.state(now) as u8;
            u.metrics.breaker.set(f64::from(state));
        }
    }

    /// Answers `req`, which came from `peer`.
    pub async fn handle<B>(&self, mut req: Request<B>, peer: SocketAddr) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let host = request_host(&req);
        let path = req.uri().path().to_owned();
        let Some((index, route)) = self.routes.find(host.as_deref(), &path) else {
            return problem(
                StatusCode::NOT_FOUND,
                "no-route",
                "No route for this request",
                format!("no proxy route matches {path:?}"),
                None,
            );
        };
        let Some(upstream) = self.route_upstream.get(index) else {
            return no_route();
        };
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let upgrade = forward::is_upgrade(req.headers());
        let keeps = route.dead_letter.enabled && !upgrade && self.dead_letters.is_some();
        let url = keeps.then(|| self.url(&req, &path_and_query));
        let path_and_query = if route.strip_prefix {
            routes::strip(&route.path_prefix, &path_and_query)
        } else {
            path_and_query
        };
        let on_upgrade = if upgrade {
            req.extensions_mut().remove::<OnUpgrade>()
        } else {
            None
        };
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        forward::strip_hop_by_hop(&mut headers);
        for name in &route.remove_headers {
            headers.remove(name);
        }
        headers.remove(header::HOST);
        let client = Client {
            peer: peer.ip(),
            trusted: &self.trusted,
            proto: self.proto,
        };
        forward::set_forwarded(&mut headers, &client, host.as_deref());

        let may_retry = route.retry.tries > 1
            && !upgrade
            && (retry::idempotent(&parts.method) || route.retry.non_idempotent);
        let fits = body
            .size_hint()
            .upper()
            .is_some_and(|n| usize::try_from(n).is_ok_and(|n| n <= route.retry.replay_limit));
        let unreadable = |e: BoxError| {
            problem(
                StatusCode::BAD_REQUEST,
                "body-unreadable",
                "The request body could not be read",
                e.to_string(),
                None,
            )
        };
        // A body kept for replays is also what a dead letter keeps; a route that keeps
        // dead letters reads up to its limit ahead of a body that is not kept.
        let (outgoing, tries, kept) = if may_retry && fits {
            match Limited::new(body, route.retry.replay_limit).collect().await {
                Ok(b) => {
                    let b = b.to_bytes();
                    (Outgoing::Replay(b.clone()), route.retry.tries, Some(b))
                }
                Err(e) => return unreadable(e),
            }
        } else if keeps {
            match dead_letter::read_prefix(body, route.dead_letter.body_limit).await {
                Ok(Prefix::Whole(b)) => (Outgoing::Replay(b.clone()), 1, Some(b)),
                Ok(Prefix::Cut(head, rest)) => {
                    let chained = Chained {
                        head: Some(head.clone()),
                        rest,
                    };
                    (
                        Outgoing::Stream(Some(chained.boxed_unsync())),
                        1,
                        Some(head),
                    )
                }
                Err(e) => return unreadable(e),
            }
        } else {
            let body = body.map_err(Into::into).boxed_unsync();
            (Outgoing::Stream(Some(body)), 1, None)
        };
        let kept_headers = keeps.then(|| {
            let mut more = route.remove_headers.clone();
            if let Some(pool) = &upstream.keys {
                more.push(pool.header().clone());
            }
            dead_letter::kept_headers(&headers, &more)
        });
        let method = parts.method;
        let sent = self
            .send(Outbound {
                route,
                upstream,
                method: method.clone(),
                path_and_query,
                headers,
                outgoing,
                tries,
                on_upgrade,
            })
            .await;
        if let (Some(gave_up), Some(url), Some(headers)) = (sent.gave_up, url, kept_headers) {
            let body = kept.unwrap_or_default();
            let limit = route.dead_letter.body_limit;
            let letter = DeadLetter {
                route: route_label(route),
                upstream: upstream.name.clone(),
                method: method.as_str().to_owned(),
                url,
                headers,
                body_truncated: body.len() > limit,
                body: body.slice(..body.len().min(limit)),
                last_failure: gave_up.failure,
                tries: gave_up.tries,
                at: now_ms(),
            };
            if let Some(sink) = &self.dead_letters {
                sink.post(letter);
            }
        }
        sent.response
    }

    /// The URL a client asked for, as a dead letter records it.
    fn url<B>(&self, req: &Request<B>, path_and_query: &str) -> String {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| h.parse::<http::uri::Authority>().is_ok())
                    .map(str::to_owned)
            });
        match authority {
            Some(a) => format!("{}://{a}{path_and_query}", self.proto),
            None => format!("{}://localhost{path_and_query}", self.proto),
        }
    }

    /// Tries `o` on its upstream's origins until an answer may go back to the client.
    async fn send(&self, o: Outbound<'_>) -> Sent {
        let Outbound {
            route,
            upstream,
            method,
            path_and_query,
            mut headers,
            mut outgoing,
            tries,
            on_upgrade,
        } = o;
        let start = Instant::now();
        let deadline = start.checked_add(route.total_timeout).unwrap_or(start);
        let label = upstream.name.as_str();
        upstream.metrics.requests.increment(1);
        let mut last_origin = None;
        let mut try_no = 0u32;
        loop {
            try_no = try_no.saturating_add(1);
            let now = Instant::now();
            let admit = upstream.breaker.admit(now);
            if admit == Admit::No {
                upstream.metrics.short_circuits.increment(1);
                let wait = upstream.breaker.retry_at().saturating_duration_since(now);
                return Sent::gave_up(
                    problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "upstream-unavailable",
                        "The upstream is failing",
                        format!("the circuit breaker of upstream {label:?} is open"),
                        Some(wait),
                    ),
                    "the upstream's circuit breaker is open".to_owned(),
                    try_no.saturating_sub(1),
                );
            }
            let key = match &upstream.keys {
                None => None,
                Some(pool) => match pool.choose(now) {
                    Ok(k) => Some(k),
                    Err(wake) => {
                        upstream.breaker.abandon(admit);
                        return Sent::gave_up(
                            problem(
                                StatusCode::TOO_MANY_REQUESTS,
                                "upstream-rate-limited",
                                "Every credential of the upstream is resting",
                                format!(
                                    "upstream {label:?} refused every credential; the first is usable again after Retry-After"
                                ),
                                Some(wake.saturating_duration_since(now)),
                            ),
                            "every credential of the upstream is resting".to_owned(),
                            try_no.saturating_sub(1),
                        );
                    }
                },
            };
            let origin = upstream.pick(now, last_origin);
            last_origin = Some(origin);
            let Some(uri) = upstream
                .origins()
                .get(origin)
                .and_then(|o| forward::upstream_uri(&o.uri, &path_and_query).ok())
            else {
                upstream.breaker.abandon(admit);
                return Sent::answered(problem(
                    StatusCode::BAD_REQUEST,
                    "invalid-request",
                    "The request's path cannot be forwarded",
                    path_and_query,
                    None,
                ));
            };
            let body: ProxyBody = match &mut outgoing {
                Outgoing::Replay(bytes) => Full::new(bytes.clone())
                    .map_err(|e| match e {})
                    .boxed_unsync(),
                Outgoing::Stream(b) => match b.take() {
                    Some(b) => b,
                    None => Full::new(Bytes::new())
                        .map_err(|e| match e {})
                        .boxed_unsync(),
                },
            };
            let mut out = Request::new(body);
            *out.method_mut() = method.clone();
            *out.uri_mut() = uri;
            // The last possible try takes the headers; earlier ones copy them.
            *out.headers_mut() = if try_no >= tries {
                std::mem::take(&mut headers)
            } else {
                headers.clone()
            };
            if let (Some(pool), Some((_, value))) = (&upstream.keys, &key) {
                out.headers_mut()
                    .insert(pool.header().clone(), value.clone());
            }
            let budget = route
                .try_timeout
                .min(deadline.saturating_duration_since(now));
            let tried = {
                let _in_flight = upstream.start(origin);
                let started = Instant::now();
                let tried = match tokio::time::timeout(budget, upstream.client(origin).request(out))
                    .await
                {
                    Ok(Ok(res)) => Tried::Answer(res),
                    Ok(Err(e)) => Tried::Failed(error_chain(&e)),
                    Err(_) => Tried::TimedOut,
                };
                upstream
                    .metrics
                    .duration
                    .record(started.elapsed().as_secs_f64());
                tried
            };
            let now = Instant::now();
            let (healthy, retryable, outcome) = match &tried {
                Tried::Answer(res) => {
                    let s = res.status();
                    (
                        !s.is_server_error(),
                        retry::retryable(&route.retry, s),
                        Outcome::Status(s.as_u16()),
                    )
                }
                Tried::Failed(_) => (false, true, Outcome::Error),
                Tried::TimedOut => (false, true, Outcome::Timeout),
            };
            upstream.metrics.tried(outcome);
            upstream.breaker.record(now, admit, healthy);
            upstream.outcome(origin, healthy, now);
            // Only an answer that may be retried, or that rests a credential, is asked how
            // long to wait.
            let upstream_wait = match &tried {
                Tried::Answer(res)
                    if retryable || res.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    retry::upstream_wait(res.status(), res.headers(), SystemTime::now())
                }
                _ => None,
            };
            if let (Some(pool), Some((i, _)), Tried::Answer(res)) = (&upstream.keys, &key, &tried) {
                if res.status() == StatusCode::TOO_MANY_REQUESTS {
                    pool.refused(*i, upstream_wait, now);
                } else {
                    pool.observe(*i, retry::upstream_remaining(res.headers()), None, now);
                }
            }
            if !retryable {
                if healthy {
                    upstream.succeeded();
                }
                return Sent::answered(match tried {
                    Tried::Answer(res) => answer(res, on_upgrade),
                    // Only answers are not retryable.
                    _ => failure(&tried, label),
                });
            }
            // A retry waits for its backoff, and no less than the upstream asked; a
            // credential pool does not wait for the credential that was refused.
            let mut wait = retry::backoff(&route.retry, try_no);
            let refused_key = key.is_some()
                && matches!(&tried, Tried::Answer(r) if r.status() == StatusCode::TOO_MANY_REQUESTS);
            if let Some(w) = upstream_wait.filter(|_| !refused_key) {
                wait = wait.max(w);
            }
            let past_deadline = now.checked_add(wait).is_none_or(|t| t >= deadline);
            let given_up = if try_no >= tries || past_deadline {
                true
            } else if !upstream.withdraw_retry() {
                upstream.metrics.budget_exhausted.increment(1);
                true
            } else {
                false
            };
            if given_up {
                let why = describe(&tried, route.try_timeout);
                return Sent::gave_up(finish(tried, on_upgrade, label), why, try_no);
            }
            upstream.metrics.retries.increment(1);
            // The answer being retried is dropped before the wait, freeing its connection.
            drop(tried);
            tokio::time::sleep(wait).await;
        }
    }
}

fn no_route() -> Response<ProxyBody> {
    problem(
        StatusCode::NOT_FOUND,
        "no-route",
        "No route for this request",
        String::new(),
        None,
    )
}

/// A route as dead letters name it: its host, when it has one, then its path prefix.
pub fn route_label(route: &RouteConfig) -> String {
    match &route.host {
        Some(h) => format!("{h}{}", route.path_prefix),
        None => route.path_prefix.clone(),
    }
}

/// How a last try failed, as a dead letter records it.
fn describe(tried: &Tried, try_timeout: Duration) -> String {
    match tried {
        Tried::Answer(res) => format!("the upstream answered {}", res.status()),
        Tried::Failed(e) => e.clone(),
        Tried::TimedOut => format!("no answer within {}ms", try_timeout.as_millis()),
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The last try's outcome, as the client gets it.
fn finish(tried: Tried, on_upgrade: Option<OnUpgrade>, label: &str) -> Response<ProxyBody> {
    match tried {
        Tried::Answer(res) => answer(res, on_upgrade),
        other => failure(&other, label),
    }
}

fn failure(tried: &Tried, label: &str) -> Response<ProxyBody> {
    match tried {
        Tried::TimedOut => problem(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            "The upstream did not answer in time",
            format!("upstream {label:?} did not answer in time"),
            None,
        ),
        Tried::Failed(e) => problem(
            StatusCode::BAD_GATEWAY,
            "upstream-failed",
            "The upstream could not be reached",
            format!("upstream {label:?}: {e}"),
            None,
        ),
        Tried::Answer(_) => problem(
            StatusCode::BAD_GATEWAY,
            "upstream-failed",
            "The upstream could not be reached",
            String::new(),
            None,
        ),
    }
}

/// The upstream's answer, relayed: its hop-by-hop headers dropped, its body streamed; a
/// `101 Switching Protocols` also joins the two upgraded connections.
fn answer(
    mut res: Response<hyper::body::Incoming>,
    on_upgrade: Option<OnUpgrade>,
) -> Response<ProxyBody> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = on_upgrade {
            let upstream_side = hyper::upgrade::on(&mut res);
            tokio::spawn(async move {
                match tokio::try_join!(client_side, upstream_side) {
                    Ok((client, upstream)) => {
                        let (mut c, mut u) = (TokioIo::new(client), TokioIo::new(upstream));
                        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
                            tracing::debug!(error = %e, "upgraded connection ended");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
        }
    } else {
        forward::strip_hop_by_hop(res.headers_mut());
    }
    res.map(|b| b.map_err(Into::into).boxed_unsync())
}

/// The host a request was sent to, without its port.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = req.uri().host().map(str::to_owned).or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .map(|a| a.host().to_owned())
    })?;
    Some(raw.to_ascii_lowercase())
}

/// An error and its sources, for a problem's detail.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A problem+json answer of the proxy itself.
pub fn problem(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: String,
    retry_after: Option<Duration>,
) -> Response<ProxyBody> {
    let mut body = serde_json::json!({
        "type": format!("{TYPE_BASE}{slug}"),
        "title": title,
        "status": status.as_u16(),
    });
    if !detail.is_empty()
        && let Some(m) = body.as_object_mut()
    {
        m.insert("detail".into(), detail.into());
    }
    let mut res = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(wait) = retry_after {
        // Whole seconds, rounded up, so a client that waits them is not early.
        let secs = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}
