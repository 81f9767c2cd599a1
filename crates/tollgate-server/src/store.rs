//! The counter store the server was configured with: memory or Redis.

use tollgate_core::policy::Rule;
use tollgate_core::store::Outcomes;
use tollgate_core::time::Nanos;
use tollgate_core::{Check, MemoryStore, Store, StoreError};
use tollgate_redis::RedisStore;

/// One of the stores, chosen by `store.kind`.
#[derive(Debug)]
pub enum AnyStore {
    /// In-process counters.
    Memory(MemoryStore),
    /// Counters shared through Redis.
    Redis(RedisStore),
}

impl AnyStore {
    /// Frees idle counters' memory and returns how many counters are live (memory only;
    /// Redis expires its own keys).
    pub fn sweep(&self, now: Nanos) -> Option<usize> {
        match self {
            AnyStore::Memory(m) => {
                m.sweep(now);
                Some(m.live_estimate(now))
            }
            AnyStore::Redis(_) => None,
        }
    }

    /// Publishes the store's own metrics: the memory store's evictions and resident counters,
    /// the Redis store's approximate-mode overshoot and failed syncs.
    pub fn export_metrics(&self) {
        if let AnyStore::Memory(m) = self {
            for (reason, count) in m.evictions().by_reason() {
                metrics::counter!("tollgate_store_evictions_total", "reason" => reason.as_str())
                    .absolute(count);
            }
            metrics::gauge!("tollgate_store_resident_counters").set(m.resident_counters() as f64);
        }
        if let AnyStore::Redis(r) = self
            && let Some((overshoot, sync_errors)) = r.approximate_stats()
        {
            metrics::gauge!("tollgate_approximate_overshoot_units").set(overshoot as f64);
            metrics::gauge!("tollgate_approximate_sync_errors").set(sync_errors as f64);
        }
    }

    /// What an operator should change about the store, if anything: a Redis that may fill
    /// and then refuse counters, or grow without bound (for `/readyz`, which stays ready).
    pub async fn warning(&self) -> Option<String> {
        match self {
            AnyStore::Memory(_) => None,
            AnyStore::Redis(r) => r
                .memory_warning()
                .await
                .ok()
                .flatten()
                .map(|w| w.to_string()),
        }
    }

    /// `memory` or `redis`, for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            AnyStore::Redis(_) => "redis",
        }
    }

    /// Whether the store answers, and when not, why (for `/readyz`).
    pub async fn health(&self) -> Result<(), String> {
        match self {
            AnyStore::Memory(_) => Ok(()),
            AnyStore::Redis(r) => r
                .ping()
                .await
                .map_err(|e| format!("{e} (circuit {})", r.breaker_state().name())),
        }
    }
}

// The future of a method of this enum is as large as its largest arm's, and so is every
// future that awaits it, up to the handler's, which is moved into a box on each request.
// Redis's futures take kilobytes and the memory store's a few words, so the Redis arms of
// the decision path are boxed: one allocation beside a network round trip. With the memory
// store, the future of `POST /v1/check` went from 5,288 to 2,992 bytes, and a request from
// 36,699 to 36,426 instructions (`GET /v1/authorize`: 29,368 to 28,778).
impl Store for AnyStore {
    async fn acquire(&self, checks: &[Check<'_>], now: Nanos) -> Result<Outcomes, StoreError> {
        match self {
            AnyStore::Memory(s) => s.acquire(checks, now).await,
            AnyStore::Redis(s) => Box::pin(s.acquire(checks, now)).await,
        }
    }

    async fn preview(&self, checks: &[Check<'_>], now: Nanos) -> Result<Outcomes, StoreError> {
        match self {
            AnyStore::Memory(s) => s.preview(checks, now).await,
            AnyStore::Redis(s) => Box::pin(s.preview(checks, now)).await,
        }
    }

    async fn release(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> Result<bool, StoreError> {
        match self {
            AnyStore::Memory(s) => s.release(rule, key, lease, now).await,
            AnyStore::Redis(s) => s.release(rule, key, lease, now).await,
        }
    }

    async fn renew(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> Result<bool, StoreError> {
        match self {
            AnyStore::Memory(s) => s.renew(rule, key, lease, now).await,
            AnyStore::Redis(s) => s.renew(rule, key, lease, now).await,
        }
    }

    async fn reset(&self, rule: &Rule, key: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(s) => s.reset(rule, key).await,
            AnyStore::Redis(s) => s.reset(rule, key).await,
        }
    }

    fn decide_now(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        consume: bool,
    ) -> Option<Result<Outcomes, StoreError>> {
        match self {
            AnyStore::Memory(s) => s.decide_now(checks, now, consume),
            AnyStore::Redis(_) => None,
        }
    }

    fn answers_at_once(&self) -> bool {
        matches!(self, AnyStore::Memory(_))
    }
}
