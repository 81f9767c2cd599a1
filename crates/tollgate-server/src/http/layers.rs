//! The layers every request to the router passes, tower-http's but for the timeout: request
//! ids, a span per request, panics answered as problems, the security headers, the timeout
//! (longer for a CPU profile) and CORS.
//! (The two decision routes are answered before the router: `direct`.)

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use super::problem::Problem;

/// The request id header: honoured when a caller sends a usable one, else made.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id honoured; a longer one is replaced, so a client cannot make
/// every log line carry a kilobyte of its choosing.
pub const MAX_REQUEST_ID: usize = 128;

/// How many security headers every answer carries (no sniffing, no caching).
pub const EVERY_ANSWER_HEADERS: usize = 2;

/// `routes` inside the layers every request passes, outermost first: the request id, the
/// request's span (its id rides on every line logged while it is served), the id echoed on
/// the answer, the security headers, panics as a 500 problem, the timeout (408 problem),
/// CORS.
pub fn around(routes: Router, timeout: Duration, cors: Option<CorsLayer>) -> Router {
    let layers = ServiceBuilder::new()
        .map_request(drop_unusable_request_id)
        .layer(SetRequestIdLayer::new(
            X_REQUEST_ID,
            super::request_id::MakeId,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(CatchPanicLayer::custom(panicked))
        .map_response(timeout_problem)
        .layer(axum::middleware::from_fn_with_state(timeout, timed))
        .option_layer(cors);
    routes.layer(layers)
}

/// `routes` with the headers that concern pages a browser may show: no framing, no
/// referrer, no content of any origin.
pub fn for_browsers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
}

/// Removes a request id that is empty, too long or not text, so that one is made instead.
fn drop_unusable_request_id<B>(mut req: Request<B>) -> Request<B> {
    let unusable = req
        .headers()
        .get(&X_REQUEST_ID)
        .is_some_and(|id| id.is_empty() || id.len() > MAX_REQUEST_ID || id.to_str().is_err());
    if unusable {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    req
}

/// Every request's span. The path only: query strings may carry secrets.
fn span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!(
        "request",
        request_id = id,
        method = %req.method(),
        path = %req.uri().path(),
        otel.name = format!("{} {}", req.method(), req.uri().path()).as_str(),
        otel.kind = "server",
        trace_id = tracing::field::Empty,
    );
    if crate::telemetry::sample::traced() {
        let trace = crate::telemetry::propagate::adopt(&span, req.headers());
        span.record("trace_id", trace.as_str());
    } else if crate::telemetry::on()
        && let Some(trace) = crate::telemetry::propagate::caller_trace(req.headers())
    {
        // Sampled out here: the caller's trace still ties these lines to its own spans.
        span.record("trace_id", trace.as_str());
    }
    span
}

/// `next` within `server.request_timeout`, else a 408. A CPU profile samples for as long
/// as it was asked, so its route has that much more time.
async fn timed(State(timeout): State<Duration>, req: Request<Body>, next: Next) -> Response {
    let limit = if req.uri().path() == PROFILE_PATH {
        timeout.saturating_add(Duration::from_secs(crate::debug::profile::MAX_SECONDS))
    } else {
        timeout
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// The CPU profile's route.
pub const PROFILE_PATH: &str = "/v1/debug/pprof/profile";

/// The timeout's empty 408, as a problem.
fn timeout_problem(res: Response) -> Response {
    if res.status() == StatusCode::REQUEST_TIMEOUT
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        return Problem::timeout().into_response();
    }
    res
}

fn panicked(err: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let what = err
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
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
