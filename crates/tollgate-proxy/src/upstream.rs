//! One upstream pool: its origins with their requests in flight and passive health, how
//! one is chosen, its breaker, its retry budget, its credentials and its pooled client.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::retry::budget::{Budget, TpsBudget};

use crate::breaker::Breaker;
use crate::client::Clients;
use crate::config::{Balance, UpstreamConfig};
use crate::keys::KeyPool;
use crate::metrics::UpstreamMetrics;

/// How long retries are weighed against successes.
const BUDGET_TTL: Duration = Duration::from_secs(10);

/// One origin of a pool.
#[derive(Debug)]
pub struct Origin {
    /// Scheme and authority.
    pub uri: Uri,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    /// Nanoseconds since the pool's epoch until which the origin is left out.
    ejected_until: AtomicU64,
    /// Whether active health checks leave it out.
    checked_down: AtomicBool,
    /// Whether it is spoken to in HTTP/2 without TLS (an `h2c` origin).
    pub prior_knowledge: bool,
}

/// An upstream pool.
pub struct Upstream {
    /// Its name in the configuration, and its metrics' `upstream` label.
    pub name: String,
    origins: Vec<Origin>,
    balance: Balance,
    next: AtomicUsize,
    eject_after: u32,
    eject_for: Duration,
    epoch: Instant,
    /// Its circuit breaker.
    pub breaker: Breaker,
    budget: TpsBudget,
    /// Its credentials, when the proxy injects them.
    pub keys: Option<KeyPool>,
    /// Its pooled clients.
    pub clients: Clients,
    /// Its pooled clients for `h2c` origins, HTTP/2 from the first byte.
    h2c_clients: Clients,
    /// Its metrics.
    pub metrics: UpstreamMetrics,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

/// Errors in making an upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The platform's root certificates could not be read.
    #[error("could not load the platform's root certificates: {0}")]
    RootCertificates(std::io::Error),
    /// The upstream's own CA could not be used.
    #[error("the upstream's ca_file: {0}")]
    OwnRoots(String),
}

/// A TLS client configuration that trusts only the certificates of `pem`.
fn own_roots(pem: &[u8]) -> Result<rustls::ClientConfig, UpstreamError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| UpstreamError::OwnRoots(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| UpstreamError::OwnRoots(e.to_string()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::OwnRoots(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Upstream {
    /// The pool `config` describes, named `name`.
    pub fn new(name: &str, config: &UpstreamConfig, epoch: Instant) -> Result<Self, UpstreamError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match &config.ca_pem {
            Some(pem) => builder.with_tls_config(own_roots(pem)?),
            None => builder
                .with_native_roots()
                .map_err(UpstreamError::RootCertificates)?,
        };
        let https = builder
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let h2c = https.clone();
        let min_per_sec = config
            .budget
            .min_per_second
            .min(i32::MAX.unsigned_abs().saturating_sub(1));
        Ok(Upstream {
            name: name.to_owned(),
            origins: config
                .origins
                .iter()
                .enumerate()
                .map(|(i, uri)| Origin {
                    uri: uri.clone(),
                    in_flight: AtomicUsize::new(0),
                    failures: AtomicU32::new(0),
                    ejected_until: AtomicU64::new(0),
                    checked_down: AtomicBool::new(false),
                    prior_knowledge: config.prior_knowledge.get(i).copied().unwrap_or(false),
                })
                .collect(),
            balance: config.balance,
            next: AtomicUsize::new(0),
            eject_after: config.eject_after,
            eject_for: config.eject_for,
            epoch,
            breaker: Breaker::new(config.breaker, epoch),
            budget: TpsBudget::new(BUDGET_TTL, min_per_sec, config.budget.ratio.clamp(0.0, 1.0)),
            keys: config.keys.as_ref().map(KeyPool::new),
            clients: Clients::new(https, false),
            h2c_clients: Clients::new(h2c, true),
            metrics: UpstreamMetrics::new(name),
        })
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The origins.
    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }

    /// This thread's client for origin `i`.
    pub fn client(&self, i: usize) -> crate::client::HttpClient {
        if self.origins.get(i).is_some_and(|o| o.prior_knowledge) {
            self.h2c_clients.get()
        } else {
            self.clients.get()
        }
    }

    /// Chooses an origin for a try at `now`, other than `avoid` when there is another:
    /// among those neither ejected nor failing their health checks (all of them when every
    /// one is, so a pool never refuses for its health alone), by the pool's balance.
    pub fn pick(&self, now: Instant, avoid: Option<usize>) -> usize {
        let at = self.nanos(now);
        let healthy: Vec<usize> = (0..self.origins.len())
            .filter(|&i| {
                self.origins.get(i).is_some_and(|o| {
                    o.ejected_until.load(Ordering::Relaxed) <= at
                        && !o.checked_down.load(Ordering::Relaxed)
                })
            })
            .collect();
        let mut pool = if healthy.is_empty() {
            (0..self.origins.len()).collect()
        } else {
            healthy
        };
        if pool.len() > 1 {
            pool.retain(|&i| Some(i) != avoid);
        }
        let n = pool.len();
        if n <= 1 {
            return pool.first().copied().unwrap_or(0);
        }
        let choose = |k: usize| {
            pool.get(k.checked_rem(n).unwrap_or(0))
                .copied()
                .unwrap_or(0)
        };
        match self.balance {
            Balance::RoundRobin => choose(self.next.fetch_add(1, Ordering::Relaxed)),
            Balance::LeastRequest => {
                // Two distinct draws: the second skips past the first.
                let a = fastrand::usize(0..n);
                let b = a
                    .saturating_add(1)
                    .saturating_add(fastrand::usize(0..n.saturating_sub(1)));
                let (a, b) = (choose(a), choose(b));
                let load = |i: usize| {
                    self.origins
                        .get(i)
                        .map_or(usize::MAX, |o| o.in_flight.load(Ordering::Relaxed))
                };
                if load(b) < load(a) { b } else { a }
            }
        }
    }

    /// Counts a try starting on origin `i`; the guard counts it ended.
    pub fn start(&self, i: usize) -> InFlight<'_> {
        if let Some(o) = self.origins.get(i) {
            o.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        InFlight { upstream: self, i }
    }

    /// Records how a try on origin `i` ended: an origin that fails `eject_after` times in
    /// a row is left out for `eject_for`.
    pub fn outcome(&self, i: usize, ok: bool, now: Instant) {
        let Some(o) = self.origins.get(i) else {
            return;
        };
        if ok {
            o.failures.store(0, Ordering::Relaxed);
            return;
        }
        let failures = o.failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if failures >= self.eject_after {
            o.failures.store(0, Ordering::Relaxed);
            let until = self.nanos(now.checked_add(self.eject_for).unwrap_or(now));
            o.ejected_until.store(until, Ordering::Relaxed);
            tracing::warn!(upstream = %self.name, origin = %o.uri, "origin ejected after consecutive failures");
        }
    }

    /// Records what active checks say of origin `i`.
    pub fn set_checked_down(&self, i: usize, down: bool) {
        if let Some(o) = self.origins.get(i)
            && o.checked_down.swap(down, Ordering::Relaxed) != down
        {
            tracing::warn!(upstream = %self.name, origin = %o.uri, healthy = !down, "origin health changed");
        }
    }

    /// Credits the retry budget with a request that succeeded.
    pub fn succeeded(&self) {
        self.budget.deposit();
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn withdraw_retry(&self) -> bool {
        self.budget.withdraw()
    }
}

/// A try in flight on one origin.
pub struct InFlight<'a> {
    upstream: &'a Upstream,
    i: usize,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(o) = self.upstream.origins.get(self.i) {
            o.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects)]
    use super::*;
    use crate::config::{BreakerConfig, BudgetConfig};

    fn upstream(balance: Balance, n: usize) -> (Upstream, Instant) {
        let t0 = Instant::now();
        let config = UpstreamConfig {
            origins: (0..n)
                .map(|i| format!("http://127.0.0.1:{}", 9000 + i).parse().unwrap())
                .collect(),
            prior_knowledge: Vec::new(),
            balance,
            connect_timeout: Duration::from_secs(1),
            eject_after: 2,
            eject_for: Duration::from_secs(5),
            breaker: BreakerConfig::default(),
            budget: BudgetConfig {
                ratio: 0.1,
                min_per_second: 0,
            },
            keys: None,
            health: None,
            ca_pem: None,
        };
        (Upstream::new("u", &config, t0).unwrap(), t0)
    }

    #[test]
    fn round_robin_takes_each_in_turn_and_skips_the_one_to_avoid() {
        let (u, t0) = upstream(Balance::RoundRobin, 3);
        let picks: Vec<_> = (0..6).map(|_| u.pick(t0, None)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        for _ in 0..10 {
            assert_ne!(u.pick(t0, Some(1)), 1);
        }
    }

    #[test]
    fn least_request_prefers_the_idle_origin() {
        let (u, t0) = upstream(Balance::LeastRequest, 2);
        let _busy = (u.start(0), u.start(0));
        for _ in 0..20 {
            assert_eq!(u.pick(t0, None), 1);
        }
    }

    #[test]
    fn a_failing_origin_is_ejected_for_a_while_unless_all_are() {
        let (u, t0) = upstream(Balance::RoundRobin, 2);
        u.outcome(0, false, t0);
        u.outcome(0, false, t0);
        for _ in 0..6 {
            assert_eq!(u.pick(t0, None), 1);
        }
        u.outcome(1, false, t0);
        u.outcome(1, false, t0);
        let both: std::collections::BTreeSet<_> = (0..6).map(|_| u.pick(t0, None)).collect();
        assert_eq!(both.len(), 2, "every origin ejected: all are tried");
        let later = t0 + Duration::from_secs(5);
        assert_eq!(u.pick(later, Some(0)), 1);
    }

    #[test]
    fn retries_are_a_tenth_of_successes() {
        let (u, _) = upstream(Balance::RoundRobin, 1);
        for _ in 0..100 {
            u.succeeded();
        }
        let retries = (0..100).take_while(|_| u.withdraw_retry()).count();
        assert_eq!(retries, 10);
    }
}
