//! What every request passes first: its request id, its span, panic catching and the
//! security headers, in one layer.
//!
//! tower-http has a layer for each of these, but stacked they cost a decision about a
//! tenth of its instructions: the request id travelled as a request header and an
//! extension before being copied to the answer, and the trace and panic layers each wrapped
//! the answer's body, which then had to be boxed again at every level above them. Here the
//! answer stays a plain [`Response`] and the id is kept by the future until it answers.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::Span;

use super::direct;
use super::problem::Problem;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id honoured; a longer one is replaced, so a client cannot make
/// every log line carry a kilobyte of its choosing.
const MAX_REQUEST_ID: usize = 128;

/// How many [`SECURITY_HEADERS`] there are.
pub const SECURITY_HEADER_COUNT: usize = 5;

/// Headers every answer carries: an API's answers are never sniffed, framed, cached or
/// sent on as a referrer. The first [`MACHINE_HEADER_COUNT`] are all that answers of the
/// decision routes carry (see [`is_decision_route`]).
pub const SECURITY_HEADERS: [(HeaderName, &str); SECURITY_HEADER_COUNT] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// How many of [`SECURITY_HEADERS`] the decision routes' answers carry: no sniffing and
/// no caching, which hold for any client. Framing, referrers and content policy concern a
/// page shown in a browser; a decision is read by a service or a proxy, and each of those
/// headers costs every decision about 1.4% of the throughput (measured: the five together,
/// 7% of `POST /v1/check`'s).
pub const MACHINE_HEADER_COUNT: usize = 2;

/// `POST /v1/check` and `/v1/authorize`, whose answers go to services and proxies.
pub fn is_decision_route(path: &str) -> bool {
    path == direct::CHECK || path == direct::AUTHORIZE
}

/// See [`Edge`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EdgeLayer;

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner }
    }
}

/// Gives each request an id (its `X-Request-Id` when it has a usable one, else a new
/// UUID) that every log line written while serving it carries and its answer echoes; turns
/// a panic into a 500 problem and a log line; sets [`SECURITY_HEADERS`] where the answer
/// has not (the decision routes' answers, only the first [`MACHINE_HEADER_COUNT`]).
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Edge<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = request_id(&req);
        let security = if is_decision_route(req.uri().path()) {
            MACHINE_HEADER_COUNT
        } else {
            SECURITY_HEADER_COUNT
        };
        let span = request_span(&req, &id);
        // Timed only for the line it would go to.
        let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
        let called = {
            let _entered = span.enter();
            catch_unwind(AssertUnwindSafe(|| self.inner.call(req)))
        };
        let (inner, panic) = match called {
            Ok(inner) => (Some(inner), None),
            Err(panic) => (None, Some(panicked(panic))),
        };
        EdgeFuture {
            inner,
            panic,
            id: Some(id),
            security,
            span,
            started,
        }
    }
}

fn request_id<B>(req: &Request<B>) -> HeaderValue {
    if let Some(id) = req.headers().get(X_REQUEST_ID)
        && !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id.to_str().is_ok()
    {
        return id.clone();
    }
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

/// Every request's span: its id rides on each line logged while it is served. The path
/// only: query strings may carry secrets.
fn request_span<B>(req: &Request<B>, id: &HeaderValue) -> Span {
    tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or("-"),
        method = %req.method(),
        path = %req.uri().path()
    )
}

pin_project! {
    /// The response future of [`Edge`].
    pub struct EdgeFuture<F> {
        #[pin]
        inner: Option<F>,
        // The 500 to answer when making the inner future panicked.
        panic: Option<Response>,
        id: Option<HeaderValue>,
        // How many of the security headers the answer gets.
        security: usize,
        span: Span,
        started: Option<Instant>,
    }
}

impl<F, E> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let res = match this.inner.as_pin_mut() {
            Some(inner) => match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Err(e))) => return Poll::Ready(Err(e)),
                Ok(Poll::Ready(Ok(res))) => res,
                Err(panic) => panicked(panic),
            },
            None => this.panic.take().unwrap_or_else(|| panicked(Box::new(()))),
        };
        Poll::Ready(Ok(finish(
            res,
            this.id.take(),
            *this.security,
            *this.started,
        )))
    }
}

/// The answer as it leaves: with the request id, the first `security` security headers,
/// and a log line.
fn finish(
    mut res: Response,
    id: Option<HeaderValue>,
    security: usize,
    started: Option<Instant>,
) -> Response {
    let headers = res.headers_mut();
    if let Some(id) = id {
        headers.insert(X_REQUEST_ID, id);
    }
    for (name, value) in SECURITY_HEADERS.into_iter().take(security) {
        if let header::Entry::Vacant(slot) = headers.entry(name) {
            slot.insert(HeaderValue::from_static(value));
        }
    }
    let status = res.status().as_u16();
    // A 500 is a fault of ours. A 502–504 is a store or registry that did not answer, which
    // those log where they fail; logging it again per answer would double a flood.
    if res.status() == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(status, "answered with an internal error");
    } else if let Some(started) = started {
        tracing::debug!(
            status,
            latency_us = started.elapsed().as_micros() as u64,
            "answered"
        );
    }
    res
}

fn panicked(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    tracing::error!(panic = %what, "a request handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        None,
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    async fn answer(id: Option<&str>) -> Response {
        answer_at("/x", id).await
    }

    async fn answer_at(path: &str, id: Option<&str>) -> Response {
        let svc = EdgeLayer.layer(tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(([(header::CACHE_CONTROL, "max-age=5")], "fine").into_response())
        }));
        let mut req = Request::builder().uri(path);
        if let Some(id) = id {
            req = req.header(X_REQUEST_ID, id);
        }
        svc.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn an_overlong_request_id_is_replaced_by_a_new_one() {
        let res = answer(Some(&"a".repeat(MAX_REQUEST_ID + 1))).await;
        let id = res.headers()[X_REQUEST_ID].to_str().unwrap();
        assert_eq!(id.len(), 36);
        assert!(uuid::Uuid::parse_str(id).is_ok());
        let res = answer(Some(&"b".repeat(MAX_REQUEST_ID))).await;
        assert_eq!(res.headers()[X_REQUEST_ID], "b".repeat(MAX_REQUEST_ID));
    }

    #[tokio::test]
    async fn security_headers_fill_in_and_never_override_the_handler() {
        let res = answer(None).await;
        assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=5");
        assert_eq!(res.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(res.headers()[header::REFERRER_POLICY], "no-referrer");
        assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }

    #[tokio::test]
    async fn decision_answers_carry_only_the_headers_a_service_reads() {
        for path in ["/v1/check", "/v1/authorize"] {
            let res = answer_at(path, Some("r-2")).await;
            let h = res.headers();
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(h[header::CACHE_CONTROL], "max-age=5", "{path}");
            assert_eq!(h[X_REQUEST_ID], "r-2", "{path}");
            for page_only in [
                header::X_FRAME_OPTIONS,
                header::REFERRER_POLICY,
                header::CONTENT_SECURITY_POLICY,
            ] {
                assert!(!h.contains_key(&page_only), "{path}: {page_only}");
            }
        }
        // Near misses are not decision routes.
        let res = answer_at("/v1/check/", None).await;
        assert_eq!(res.headers()[header::X_FRAME_OPTIONS], "DENY");
    }

    #[tokio::test]
    async fn a_service_that_panics_when_called_answers_500() {
        #[derive(Clone)]
        struct Broken;
        impl Service<Request<Body>> for Broken {
            type Response = Response;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<Body>) -> Self::Future {
                panic!("broken before answering")
            }
        }
        let req = Request::builder()
            .uri("/x")
            .header(X_REQUEST_ID, "r-1")
            .body(Body::empty())
            .unwrap();
        let res = EdgeLayer.layer(Broken).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[X_REQUEST_ID], "r-1");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}
