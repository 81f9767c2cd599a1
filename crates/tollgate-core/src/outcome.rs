//! What one limit says about one request.

use std::num::NonZeroU64;

use crate::time::Nanos;

/// The answer of one limit (one [`Check`](crate::Check)) at one instant.
///
/// Durations are nanoseconds relative to the instant of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether this limit admits the request.
    pub allowed: bool,
    /// The most this limit can admit at once (for bucket algorithms: the rate plus the burst;
    /// for quotas: this period's allowance including rolled-over units).
    pub limit: u64,
    /// Units still available after this decision.
    pub remaining: u64,
    /// Time until the limit is fully replenished (0 when nothing is consumed).
    pub reset: Nanos,
    /// Time until this cost would be admitted: `Some(0)` when it is admitted now, `None` when
    /// it never would be (the cost exceeds what the limit can ever hold).
    pub retry_after: Option<Nanos>,
    /// Set when the denial comes from a penalty (`on_exceed.block_for`), not the count itself.
    pub blocked: bool,
    /// The lease taken by an admitted concurrency check, to be passed to
    /// [`Store::release`](crate::Store::release). Never zero, which keeps an outcome small
    /// enough to move in registers.
    pub lease: Option<NonZeroU64>,
}

impl Outcome {
    /// An admitting outcome.
    pub fn allow(limit: u64, remaining: u64, reset: Nanos) -> Self {
        Outcome {
            allowed: true,
            limit,
            remaining,
            reset,
            retry_after: Some(0),
            blocked: false,
            lease: None,
        }
    }

    /// A denying outcome.
    pub fn deny(limit: u64, remaining: u64, reset: Nanos, retry_after: Option<Nanos>) -> Self {
        Outcome {
            allowed: false,
            limit,
            remaining,
            reset,
            retry_after,
            blocked: false,
            lease: None,
        }
    }
}
