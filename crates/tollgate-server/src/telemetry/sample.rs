//! Head sampling at the door: whether a request is traced is settled when it arrives, before
//! any span exists, and holds for everything done on its behalf.
//!
//! Leaving the choice to the OpenTelemetry sampler would make every request build its spans
//! (the registry's slots, their fields, the exporter layer's bookkeeping) only for most of
//! them to be dropped at the end; a request sampled out here makes none of its trace
//! spans, so its cost with traces on is the cost with traces off. The exporting layer's
//! filters read [`traced`]: outside [`within`], nothing is traced.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt as _;

tokio::task_local! {
    /// This request's sampling decision.
    static TRACED: bool;
}

/// The share of traces started here that are kept, as the bits of an `f64`.
static RATIO: AtomicU64 = AtomicU64::new(0);

/// Sets the share of traces started here that are kept (the `telemetry.sample_ratio`).
pub fn set_ratio(ratio: f64) {
    RATIO.store(ratio.to_bits(), Ordering::Relaxed);
}

/// Whether a request whose caller sent `traceparent` is traced: as the caller decided when
/// it sent a valid one (parent-based sampling), else at the configured ratio.
pub fn decide(traceparent: Option<&str>) -> bool {
    traceparent
        .and_then(caller_sampled)
        .unwrap_or_else(|| draw(fastrand::f64()))
}

/// Whether a trace started here, with no caller (a background job's), is kept.
pub fn root() -> bool {
    draw(fastrand::f64())
}

/// Whether a uniform draw in `[0, 1)` falls within the ratio.
fn draw(uniform: f64) -> bool {
    uniform < f64::from_bits(RATIO.load(Ordering::Relaxed))
}

/// The sampled flag of a valid `traceparent`; `None` when it is not one.
fn caller_sampled(traceparent: &str) -> Option<bool> {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&One(traceparent)));
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.is_sampled())
}

/// Runs `fut` as a request traced or not.
pub async fn within<F: Future>(traced: bool, fut: F) -> F::Output {
    TRACED.scope(traced, fut).await
}

/// Whether the request being served is traced; false outside [`within`].
pub fn traced() -> bool {
    TRACED.try_with(|t| *t).unwrap_or(false)
}

/// A lone `traceparent`, as the propagator reads it.
struct One<'a>(&'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn propagator() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
    }

    #[test]
    fn the_callers_flag_decides() {
        propagator();
        let tp =
            |flags: &str| format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
        assert_eq!(caller_sampled(&tp("01")), Some(true));
        assert_eq!(caller_sampled(&tp("00")), Some(false));
        assert_eq!(caller_sampled("00-nothex-00f067aa0ba902b7-01"), None);
        assert_eq!(
            caller_sampled("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
    }

    #[test]
    fn draws_fall_within_the_ratio() {
        set_ratio(0.01);
        assert!(draw(0.0));
        assert!(draw(0.009_999));
        assert!(!draw(0.01));
        assert!(!draw(0.5));
        let mut rng = fastrand::Rng::with_seed(7);
        let kept = (0..100_000).filter(|_| draw(rng.f64())).count();
        assert!((800..1_200).contains(&kept), "{kept}");
        set_ratio(1.0);
        assert!(draw(0.999_999));
        set_ratio(0.0);
        assert!(!draw(0.0));
    }

    #[tokio::test]
    async fn a_request_is_traced_only_within_its_scope() {
        assert!(!traced());
        assert!(within(true, async { traced() }).await);
        assert!(!within(false, async { traced() }).await);
    }
}
