//! Service-level objectives: which requests count, how each instance counts them per
//! minute, and the error budget and burn rates they give.

pub mod burn;
pub mod minutes;
pub mod status;

use std::time::Duration;

use minutes::Minutes;

/// The `slo` section: the objectives, read at start.
#[derive(Debug, Default)]
pub struct SloSettings {
    /// The objectives, in order.
    pub objectives: Vec<Objective>,
    /// How often each instance writes its counts to the registry and exports its view.
    pub flush_every: Duration,
}

/// One objective: a share of the requests of some route that must be good over a window.
#[derive(Debug)]
pub struct Objective {
    /// Its name, unique in the section.
    pub name: String,
    /// Which requests count.
    pub requests: Requests,
    /// What makes one good.
    pub kind: Kind,
    /// The share that must be good (0.999 for 99.9%).
    pub target: f64,
    /// The window the error budget is spent over.
    pub window: Duration,
    /// This instance's counts per minute over the window.
    pub minutes: Minutes,
}

/// Which requests an objective counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requests {
    /// HTTP requests to this path.
    Path(String),
    /// HTTP requests to paths under this prefix (`/v1/keys/*`).
    Prefix(String),
    /// The gRPC door's calls.
    Grpc,
}

/// What makes a request good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Answered without a server error.
    Availability,
    /// Answered without a server error within this time.
    Latency(Duration),
}

impl Objective {
    /// Whether a request to `path` (`None` for a gRPC call) counts.
    pub fn counts(&self, path: Option<&str>) -> bool {
        match (&self.requests, path) {
            (Requests::Path(p), Some(path)) => p == path,
            (Requests::Prefix(p), Some(path)) => path.starts_with(p.as_str()),
            (Requests::Grpc, None) => true,
            _ => false,
        }
    }

    /// Whether a request that ended with a server error or not (`failed`) after `took`
    /// was good.
    pub fn good(&self, failed: bool, took: Duration) -> bool {
        !failed
            && match self.kind {
                Kind::Availability => true,
                Kind::Latency(max) => took <= max,
            }
    }
}

impl SloSettings {
    /// Counts one request to `path` (`None` for gRPC) that ended `failed` or not after
    /// `took`, at `now` (ms), under every objective it belongs to.
    pub fn record(&self, path: Option<&str>, failed: bool, took: Duration, now: i64) {
        for o in &self.objectives {
            if o.counts(path) {
                let good = o.good(failed, took);
                o.minutes.record(now, good);
                metrics::counter!(
                    "tollgate_slo_requests_total",
                    "objective" => o.name.clone(),
                    "outcome" => if good { "good" } else { "bad" }
                )
                .increment(1);
            }
        }
    }
}
