//! Traces over OTLP: the exporter and sampler from the `telemetry` section and the standard
//! `OTEL_*` variables, and the W3C trace context read on every door.
//!
//! Spans meant for traces carry the target [`TRACE`]. The log lines never show them, and
//! without a `telemetry` section (or `OTEL_EXPORTER_OTLP_ENDPOINT`) no layer wants them:
//! `tracing` then skips them at their call sites, so traces cost nothing when off. With
//! traces on, each door samples its request as it arrives ([`sample`]), and a request
//! sampled out makes no trace spans.

pub mod propagate;
pub mod sample;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::subscriber::Interest;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

pub use tollgate_engine::TRACE;

/// Whether traces are on: the doors read trace context only then.
static ON: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// How OTLP reaches the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, path `/v1/traces`).
    HttpProtobuf,
}

/// The `telemetry` section, with the standard variables applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// The collector, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: Protocol,
    /// The service name traces carry.
    pub service_name: String,
    /// The share of traces started here that are kept; a caller's sampling decision (its
    /// `traceparent`) is followed.
    pub sample_ratio: f64,
    /// How long one export may take.
    pub timeout: Duration,
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the OTLP exporter: {0}")]
pub struct TelemetryError(String);

/// The layer exporting [`TRACE`] spans (and the router's request spans) to the collector,
/// and the provider to shut down at exit (which sends what is buffered). Must be called
/// within the tokio runtime.
pub fn layer<S>(
    settings: &TelemetrySettings,
) -> Result<(impl Layer<S> + use<S>, SdkTracerProvider), TelemetryError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let exporter = match settings.protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&settings.endpoint)
            .with_timeout(settings.timeout)
            .build(),
        Protocol::HttpProtobuf => {
            let client = opentelemetry_http::hyper::HyperClient::new(
                https_connector()?,
                settings.timeout,
                None,
            );
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(traces_url(&settings.endpoint))
                .with_timeout(settings.timeout)
                .build()
        }
    }
    .map_err(|e| TelemetryError(e.to_string()))?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        // The ratio is applied at the doors, before any span exists: a span that reaches the
        // exporter belongs to a request already sampled in.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let layer = exporting(provider.tracer("tollgate"));
    sample::set_ratio(settings.sample_ratio);
    ON.store(true, Ordering::Relaxed);
    Ok((layer, provider))
}

/// The layer sending `tracer` the spans of requests sampled in.
///
/// A per-layer filter alone cannot keep a span from being made: when it declines one, the
/// span is still built in the registry for the other layers, then dropped. So the [`TRACE`]
/// spans, which no other layer wants, are gated by a global filter as well, and a request
/// sampled out makes none of them.
fn exporting<S>(tracer: opentelemetry_sdk::trace::Tracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let gate = tracing_subscriber::filter::dynamic_filter_fn(|m, _| {
        m.target() != TRACE || sample::traced()
    })
    .with_callsite_filter(|m| {
        if m.target() == TRACE {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    });
    gate.and_then(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(exported()),
    )
}

/// What the exporting layer takes: the [`TRACE`] spans and the router's request spans of a
/// request sampled in, nothing else.
fn exported<S>() -> impl tracing_subscriber::layer::Filter<S> {
    tracing_subscriber::filter::dynamic_filter_fn(|_, _| sample::traced()).with_callsite_filter(
        |m| {
            if m.target() == TRACE || (m.is_span() && m.name() == "request") {
                Interest::sometimes()
            } else {
                Interest::never()
            }
        },
    )
}

/// The OTLP/HTTP traces URL: the endpoint as given when it names a path, else with
/// `/v1/traces`, as the specification says of `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// HTTP or HTTPS (rustls on ring, the system's roots) for the HTTP exporter.
fn https_connector() -> Result<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    TelemetryError,
> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| TelemetryError(format!("no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// The subscriber `tollgate serve` builds with traces on, its exporter sending nowhere.
    fn serving() -> impl tracing::Subscriber + Send + Sync {
        let traces = exporting(SdkTracerProvider::builder().build().tracer("test"));
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(tracing_subscriber::EnvFilter::new(format!(
                "info,{TRACE}=off"
            )));
        tracing_subscriber::registry().with(Some(traces)).with(logs)
    }

    fn trace_span() -> tracing::Span {
        tracing::info_span!(target: TRACE, "decision")
    }

    #[tokio::test]
    async fn a_request_sampled_out_makes_no_span() {
        let _guard = tracing::subscriber::set_default(serving());
        assert!(trace_span().is_disabled());
        assert!(sample::within(false, async { trace_span().is_disabled() }).await);
        assert!(!sample::within(true, async { trace_span().is_disabled() }).await);
        // A log line's span is the log's, sampled or not.
        assert!(!sample::within(false, async { tracing::info_span!("work").is_disabled() }).await);
    }

    #[test]
    fn the_http_traces_url() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
