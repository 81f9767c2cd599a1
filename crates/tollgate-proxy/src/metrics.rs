//! An upstream's metrics, registered once when the upstream is made: a labelled macro call
//! looks its series up by name and labels on every use, which a request would pay several
//! times over.

use metrics::{Counter, Gauge, Histogram};

/// How a try ended, as the `outcome` label of `tollgate_proxy_tries_total` says it.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// An answer, by its status class (1 to 5).
    Status(u16),
    /// A connection or protocol error before the answer's head.
    Error,
    /// No answer's head within the try's time.
    Timeout,
}

/// The name of the upstream latency histogram, for the recorder's buckets.
pub const UPSTREAM_DURATION: &str = "tollgate_proxy_upstream_duration_seconds";

const OUTCOMES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error", "timeout"];

/// The series of one upstream.
#[derive(Debug)]
pub struct UpstreamMetrics {
    /// `tollgate_proxy_requests_total`
    pub requests: Counter,
    /// `tollgate_proxy_short_circuits_total`
    pub short_circuits: Counter,
    /// `tollgate_proxy_retries_total`
    pub retries: Counter,
    /// `tollgate_proxy_retry_budget_exhausted_total`
    pub budget_exhausted: Counter,
    /// `tollgate_proxy_upstream_duration_seconds`
    pub duration: Histogram,
    /// `tollgate_proxy_breaker_state`
    pub breaker: Gauge,
    tries: [Counter; 7],
}

impl UpstreamMetrics {
    /// The series labelled `upstream = name`.
    pub fn new(name: &str) -> Self {
        let up = name.to_owned();
        UpstreamMetrics {
            requests: metrics::counter!("tollgate_proxy_requests_total", "upstream" => up.clone()),
            short_circuits: metrics::counter!("tollgate_proxy_short_circuits_total", "upstream" => up.clone()),
            retries: metrics::counter!("tollgate_proxy_retries_total", "upstream" => up.clone()),
            budget_exhausted: metrics::counter!("tollgate_proxy_retry_budget_exhausted_total", "upstream" => up.clone()),
            duration: metrics::histogram!(UPSTREAM_DURATION, "upstream" => up.clone()),
            breaker: metrics::gauge!("tollgate_proxy_breaker_state", "upstream" => up.clone()),
            tries: OUTCOMES.map(|o| {
                metrics::counter!("tollgate_proxy_tries_total", "upstream" => up.clone(), "outcome" => o)
            }),
        }
    }

    /// Counts a try that ended as `outcome`.
    pub fn tried(&self, outcome: Outcome) {
        let i = match outcome {
            Outcome::Status(s) => usize::from((s / 100).clamp(1, 5)).saturating_sub(1),
            Outcome::Error => 5,
            Outcome::Timeout => 6,
        };
        if let Some(c) = self.tries.get(i) {
            c.increment(1);
        }
    }
}
