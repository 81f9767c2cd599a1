//! The near cache: counters known to deny until some instant are answered locally until
//! then, without a call to Redis.

use tollgate_core::algorithm::Limit;
use tollgate_core::policy::Rule;
use tollgate_core::time::Nanos;
use tollgate_core::{Check, Outcome};

use crate::script;

/// What a denial said, in absolute time.
#[derive(Debug, Clone, Copy)]
struct Known {
    /// The cost denied: another cost may differ (a larger one may never pass).
    cost: u64,
    /// The limit's parameters when it denied: a reload that changes them drops the entry.
    params: [u64; 6],
    until: Nanos,
    reset_at: Nanos,
    outcome: Outcome,
}

/// Bounded (TinyLFU): a flood of denied junk keys cannot grow it past its size.
pub(crate) struct NearCache {
    known: moka::sync::Cache<(u64, String), Known>,
}

impl NearCache {
    pub(crate) fn new(capacity: u64) -> Self {
        NearCache {
            known: moka::sync::Cache::builder()
                .max_capacity(capacity)
                // Entries are checked against their own instant; this only frees memory.
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
        }
    }

    /// The remembered denial for `check` at `now`, if it still holds.
    pub(crate) fn get(&self, check: &Check<'_>, now: Nanos) -> Option<Outcome> {
        let known = self
            .known
            .get(&(check.rule.seed(), check.key.to_string()))?;
        if now >= known.until
            || check.cost != known.cost && !known.outcome.blocked
            || script::params(&check.rule.limit, now).1 != known.params
        {
            return None;
        }
        let wait = known.until.saturating_sub(now);
        Some(Outcome {
            reset: known.reset_at.saturating_sub(now),
            retry_after: Some(wait),
            lease: None,
            ..known.outcome
        })
    }

    /// Remembers a denial that will hold for a while. Concurrency limits are left out: a
    /// release elsewhere frees them early. So are limits of a changed policy: the entry
    /// holds the limit it saw.
    pub(crate) fn remember(&self, check: &Check<'_>, outcome: &Outcome, now: Nanos) {
        if outcome.allowed
            || matches!(check.rule.limit, Limit::Concurrency(_))
            || check.cost == 0 && !outcome.blocked
        {
            return;
        }
        let Some(wait) = outcome.retry_after.filter(|&w| w > 0) else {
            return;
        };
        self.known.insert(
            (check.rule.seed(), check.key.to_string()),
            Known {
                cost: check.cost,
                params: script::params(&check.rule.limit, now).1,
                until: now.saturating_add(wait),
                reset_at: now.saturating_add(outcome.reset),
                outcome: *outcome,
            },
        );
    }

    /// Forgets a counter (after a reset).
    pub(crate) fn forget(&self, rule: &Rule, key: &str) {
        self.known.invalidate(&(rule.seed(), key.to_owned()));
    }
}
