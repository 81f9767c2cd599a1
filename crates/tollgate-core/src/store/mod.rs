//! Where counters live: the [`Store`] trait and the in-process [`MemoryStore`].

mod gcra_slots;
// loom's build keeps its tables boxed (`sync`).
#[cfg(not(loom))]
mod huge;
mod memory;
mod reach;
mod sync;
mod tally;

use std::future::Future;

use smallvec::SmallVec;
use thiserror::Error;

pub use crate::policy::check::Check;
pub use memory::{MemoryStore, MemoryStoreConfig};
pub use tally::{EvictionReason, Evictions};

use crate::outcome::Outcome;
use crate::policy::Rule;
use crate::time::Nanos;

/// The outcomes of one decision, one per check, in order.
pub type Outcomes = SmallVec<[Outcome; 2]>;

/// Why a store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The store could not make room for a new counter. The memory store evicts rather
    /// than refuse, so it answers this only when every slot a new key could take is held
    /// by a decision in progress at that instant.
    #[error("counter store is full ({capacity} live counters); raise store.capacity")]
    Full {
        /// The configured capacity.
        capacity: usize,
    },
    /// The store did not answer in time.
    #[error("counter store timed out")]
    Timeout,
    /// The store is unreachable or failed.
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
}

/// A place counters live, applying the checks of one decision as a unit.
///
/// `acquire` must be all-or-nothing: when every check admits, each consumes its cost; when
/// any denies, none consumes (a rule's `block_for` penalty is still recorded) and the
/// checks that would have admitted report their state unchanged, as a cost-0 check would.
/// Time is passed in so tests and the conformance vectors control it.
pub trait Store: Send + Sync {
    /// Applies `checks` at `now`, returning one outcome per check.
    fn acquire(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send;

    /// What `acquire` would answer, consuming nothing and recording no penalty.
    fn preview(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send;

    /// Ends concurrency lease `lease` of counter (`rule`, `key`); false when it had already
    /// ended.
    fn release(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives concurrency lease `lease` of counter (`rule`, `key`) a new `lease_ttl` from
    /// `now`; false when it had already ended.
    fn renew(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets counter (`rule`, `key`) and any penalty on it.
    fn reset(&self, rule: &Rule, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// For a store that never waits (the memory store): `acquire` (`consume`) or `preview`
    /// answered in place, so that a caller can decide without a future of its own. `None`,
    /// the default, for a store that must be awaited.
    fn decide_now(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        consume: bool,
    ) -> Option<Result<Outcomes, StoreError>> {
        let _ = (checks, now, consume);
        None
    }

    /// Whether [`decide_now`](Self::decide_now) always answers.
    fn answers_at_once(&self) -> bool {
        false
    }
}
