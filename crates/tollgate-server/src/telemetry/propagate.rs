//! W3C trace context (`traceparent`, `tracestate`) read from a door's request and written
//! onto calls made on its behalf.

use axum::http::HeaderMap;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The caller's trace context in `headers` (an empty one when none).
pub fn parent(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// The caller's `traceparent`, when readable.
pub fn traceparent(headers: &HeaderMap) -> Option<&str> {
    headers.get("traceparent").and_then(|v| v.to_str().ok())
}

/// Makes `span` a child of the caller's trace in `headers`, and gives the trace's id (32
/// hex digits) for the log lines written within it.
pub fn adopt(span: &tracing::Span, headers: &HeaderMap) -> String {
    // A span the exporting layer does not see cannot be given a parent; it is then part of
    // no exported trace, which is all this result could change.
    let _ = span.set_parent(parent(headers));
    span.context().span().span_context().trace_id().to_string()
}

/// The caller's trace id (32 hex digits), when its `traceparent` is valid.
pub fn caller_trace(headers: &HeaderMap) -> Option<String> {
    let cx = parent(headers);
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// Writes the current span's trace context into `headers`, for a call made on its behalf.
pub fn inject(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = parent(&h);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled());
        assert!(!parent(&HeaderMap::new()).span().span_context().is_valid());
        assert_eq!(
            caller_trace(&h).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(caller_trace(&HeaderMap::new()), None);
    }
}
