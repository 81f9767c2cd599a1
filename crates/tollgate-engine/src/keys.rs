//! Verified API keys, cached by the keyed hash of the presented key so that decisions do
//! not read the database.

use std::sync::Arc;
use std::time::Duration;

use tollgate_core::Code;
use tollgate_core::policy::{Policy, Rule};
use tollgate_core::time::now_ms;
use tollgate_registry::{KeyRecord, Registry, VerifyError};

/// A verified key: its record and its own limits, compiled.
#[derive(Debug)]
pub struct KeyEntry {
    /// The record.
    pub record: KeyRecord,
    /// Its overrides of its tier's limits.
    pub limits: Vec<Rule>,
}

impl KeyEntry {
    /// `record` with its own limits compiled against `policy`'s tiers.
    pub fn compile(record: KeyRecord, policy: &Policy) -> Self {
        let limits = tollgate_core::policy::tiers::compile_overrides(
            policy.tiers().get(&record.tier),
            &record.overrides,
            "overrides",
        )
        .unwrap_or_else(|errs| {
            // Checked when set; a later policy may have made them invalid.
            tracing::warn!(key = %record.id, errors = %errs, "the key's overrides no longer compile; its tier's limits apply");
            Vec::new()
        });
        KeyEntry { record, limits }
    }
}

/// How verified keys are cached.
#[derive(Debug, Clone, Copy)]
pub struct KeyCacheConfig {
    /// How long a verification is trusted: a change made on another instance shows within
    /// this.
    pub ttl: Duration,
    /// The most keys (and refusals) kept.
    pub capacity: u64,
    /// Database lookups in flight at once, at most.
    pub lookups: usize,
    /// How long a lookup waits for a turn before the request is answered `UNAVAILABLE`.
    pub lookup_wait: Duration,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        KeyCacheConfig {
            ttl: Duration::from_secs(5),
            capacity: 100_000,
            lookups: 32,
            lookup_wait: Duration::from_millis(250),
        }
    }
}

/// The registry and its cache of verifications: bounded, so a flood of made-up keys
/// cannot evict the good ones or exhaust memory (malformed keys never reach it).
pub(crate) struct KeyCache {
    registry: Registry,
    cache: moka::future::Cache<[u8; 32], Result<Arc<KeyEntry>, VerifyError>>,
    lookups: tokio::sync::Semaphore,
    lookup_wait: Duration,
}

impl KeyCache {
    pub(crate) fn new(registry: Registry, config: KeyCacheConfig) -> Self {
        KeyCache {
            registry,
            cache: moka::future::Cache::builder()
                .max_capacity(config.capacity)
                .time_to_live(config.ttl)
                .build(),
            lookups: tokio::sync::Semaphore::new(config.lookups.max(1)),
            lookup_wait: config.lookup_wait,
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Forgets every cached verification.
    pub(crate) fn forget(&self) {
        self.cache.invalidate_all();
    }

    /// The key entry of `presented`, compiled against `policy`; the error is the
    /// decision's code.
    pub(crate) async fn verify(
        &self,
        presented: &str,
        policy: &Policy,
    ) -> Result<Arc<KeyEntry>, Code> {
        if !tollgate_registry::key::well_formed(presented) {
            return Err(Code::KeyInvalid);
        }
        let now = now_ms();
        let hash = self.registry.key_hash(presented);
        // Concurrent misses on one key share one lookup; lookups of different keys wait
        // for one of a bounded number of turns, so a flood of made-up (well-formed) keys
        // cannot queue up the database.
        let lookup = async {
            let Ok(Ok(_turn)) =
                tokio::time::timeout(self.lookup_wait, self.lookups.acquire()).await
            else {
                metrics::counter!("tollgate_key_lookups_shed_total").increment(1);
                return Err("too many key lookups in flight".to_owned());
            };
            match self.registry.verify(presented, now).await {
                Err(VerifyError::Unavailable(why)) => Err(why),
                other => Ok(other.map(|record| Arc::new(KeyEntry::compile(record, policy)))),
            }
        };
        let found = match self.cache.try_get_with(hash, lookup).await {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(error = %why, "key verification failed: the registry did not answer");
                return Err(Code::Unavailable);
            }
        };
        match found {
            // A cached record may have expired since.
            Ok(k) if k.record.expires_at.is_some_and(|e| e <= now) => Err(Code::KeyExpired),
            Ok(k) => Ok(k),
            Err(VerifyError::Disabled) => Err(Code::KeyDisabled),
            Err(VerifyError::Expired) => Err(Code::KeyExpired),
            Err(_) => Err(Code::KeyInvalid),
        }
    }
}
