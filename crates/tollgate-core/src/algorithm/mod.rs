//! The rate-limit algorithms, each a pure state transition with time passed in.
//!
//! Every algorithm answers in two steps so that a decision over several limits can be
//! all-or-nothing: [`Limit::check`] reads a state and says what would happen, and
//! [`Limit::commit`] applies an admitted check. [`Limit::transition`] chains both for
//! callers that hold one limit alone. Neither step reads a clock.

mod concurrency;
mod divisor;
mod fixed_window;
mod gcra;
mod quota;
mod sliding_log;
mod sliding_window;
mod token_bucket;

pub use concurrency::{Concurrency, Lease, Leases};
pub use fixed_window::{Anchor, FixedWindow};
pub use gcra::Gcra;
pub use quota::{Calendar, Quota};
pub use sliding_log::{Log, MAX_LOG_LIMIT, SlidingLog};
pub use sliding_window::SlidingWindow;
pub use token_bucket::TokenBucket;

use crate::outcome::Outcome;
use crate::time::Nanos;

/// The names of the algorithms, as written in a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgorithmKind {
    /// Generic cell rate algorithm.
    Gcra,
    /// Token bucket.
    TokenBucket,
    /// Weighted two-window counter.
    SlidingWindow,
    /// Exact log of admitted requests.
    SlidingLog,
    /// Fixed window.
    FixedWindow,
    /// Concurrency leases.
    Concurrency,
    /// Calendar quota.
    Quota,
}

impl AlgorithmKind {
    /// Every algorithm, in documentation order.
    pub const ALL: [AlgorithmKind; 7] = [
        AlgorithmKind::Gcra,
        AlgorithmKind::TokenBucket,
        AlgorithmKind::SlidingWindow,
        AlgorithmKind::SlidingLog,
        AlgorithmKind::FixedWindow,
        AlgorithmKind::Concurrency,
        AlgorithmKind::Quota,
    ];

    /// The name used in policies and conformance vectors.
    pub fn name(self) -> &'static str {
        match self {
            AlgorithmKind::Gcra => "gcra",
            AlgorithmKind::TokenBucket => "token_bucket",
            AlgorithmKind::SlidingWindow => "sliding_window",
            AlgorithmKind::SlidingLog => "sliding_log",
            AlgorithmKind::FixedWindow => "fixed_window",
            AlgorithmKind::Concurrency => "concurrency",
            AlgorithmKind::Quota => "quota",
        }
    }

    /// Parses a policy name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One compiled limit: an algorithm and its parameters.
#[derive(Debug, Clone)]
pub enum Limit {
    /// See [`Gcra`].
    Gcra(Gcra),
    /// See [`TokenBucket`].
    TokenBucket(TokenBucket),
    /// See [`SlidingWindow`].
    SlidingWindow(SlidingWindow),
    /// See [`SlidingLog`].
    SlidingLog(SlidingLog),
    /// See [`FixedWindow`].
    FixedWindow(FixedWindow),
    /// See [`Concurrency`].
    Concurrency(Concurrency),
    /// See [`Quota`].
    Quota(Quota),
}

/// The state one counter keeps. Small variants stay inline so an idle counter costs
/// well under 64 bytes; the two variants that hold a list are boxed.
///
/// The layout is a one-byte tag before the fields, with `Fresh` first (tag 0), so all-zero
/// bytes are a valid `Fresh` state: the memory store maps its table of states zeroed rather
/// than writing every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// No state yet: the counter is full.
    #[default]
    Fresh = 0,
    /// GCRA's theoretical arrival time.
    Gcra {
        /// Theoretical arrival time of the next request.
        tat: Nanos,
    },
    /// A token bucket's level.
    Bucket {
        /// Tokens, in millionths.
        micro_tokens: u64,
        /// The instant `micro_tokens` was last brought up to date.
        last: Nanos,
    },
    /// A weighted two-window counter.
    Window {
        /// Start of the current window.
        start: Nanos,
        /// Units admitted in the previous window.
        prev: u32,
        /// Units admitted in the current window.
        cur: u32,
    },
    /// A fixed window's count.
    Fixed {
        /// Start of the window.
        start: Nanos,
        /// Units admitted in it.
        count: u64,
    },
    /// An exact log of admissions.
    Log(Box<Log>),
    /// Live concurrency leases.
    Leases(Box<Leases>),
    /// A calendar quota's use.
    Quota {
        /// Units used in the period.
        used: u64,
        /// Start of the period, in minutes since the Unix epoch.
        period: u32,
        /// Units rolled over from the previous period.
        carry: u32,
    },
    /// A penalty box: denied until the given instant.
    Blocked {
        /// End of the penalty.
        until: Nanos,
    },
}

impl Limit {
    /// The algorithm's name.
    pub fn kind(&self) -> AlgorithmKind {
        match self {
            Limit::Gcra(_) => AlgorithmKind::Gcra,
            Limit::TokenBucket(_) => AlgorithmKind::TokenBucket,
            Limit::SlidingWindow(_) => AlgorithmKind::SlidingWindow,
            Limit::SlidingLog(_) => AlgorithmKind::SlidingLog,
            Limit::FixedWindow(_) => AlgorithmKind::FixedWindow,
            Limit::Concurrency(_) => AlgorithmKind::Concurrency,
            Limit::Quota(_) => AlgorithmKind::Quota,
        }
    }

    /// The configured number of units per window (the `limit` of the policy).
    pub fn quota(&self) -> u64 {
        match self {
            Limit::Gcra(a) => a.limit,
            Limit::TokenBucket(a) => a.limit,
            Limit::SlidingWindow(a) => a.limit,
            Limit::SlidingLog(a) => a.limit,
            Limit::FixedWindow(a) => a.limit,
            Limit::Concurrency(a) => a.limit,
            Limit::Quota(a) => a.limit,
        }
    }

    /// The quota and window `RateLimit-Policy` shows (`q` and `w`), given `held`, the
    /// `limit` of an outcome of this limit: what the counter can hold now.
    ///
    /// A bucket with `burst` shows its size and the time it takes to fill: `limit: 100,
    /// period: 1m, burst: 20` as 120 per 72 s, the same rate as 100 per 60 s. A quota shows
    /// the period's allowance, rollover included. Either way `RateLimit`'s `r`, at most
    /// what the counter holds, never exceeds `q`.
    pub fn policy(&self, now: Nanos, held: u64) -> (u64, Option<Nanos>) {
        let bucket = |limit: u64, period: Nanos, burst: u64| {
            let size = limit.saturating_add(burst);
            let fill = wide_mul(period, size).div_ceil(u128::from(limit.max(1)));
            (size, Some(Nanos::try_from(fill).unwrap_or(Nanos::MAX)))
        };
        match self {
            Limit::Gcra(a) if a.burst > 0 => bucket(a.limit, a.period, a.burst),
            Limit::TokenBucket(a) if a.burst > 0 => bucket(a.limit, a.period, a.burst),
            Limit::Quota(a) => (held.max(a.limit), self.window(now)),
            _ => (self.quota(), self.window(now)),
        }
    }

    /// The window the quota applies to, when the algorithm has one.
    pub fn window(&self, now: Nanos) -> Option<Nanos> {
        match self {
            Limit::Gcra(a) => Some(a.period),
            Limit::TokenBucket(a) => Some(a.period),
            Limit::SlidingWindow(a) => Some(a.period),
            Limit::SlidingLog(a) => Some(a.period),
            Limit::FixedWindow(a) => Some(a.period),
            Limit::Concurrency(_) => None,
            Limit::Quota(a) => Some(a.span(now).len()),
        }
    }

    /// What admitting `cost` units at `now` would give, without changing `state`.
    ///
    /// A state of another algorithm (left by a rule whose algorithm changed) reads as fresh.
    pub fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        match self {
            Limit::Gcra(a) => a.check(state, now, cost),
            Limit::TokenBucket(a) => a.check(state, now, cost),
            Limit::SlidingWindow(a) => a.check(state, now, cost),
            Limit::SlidingLog(a) => a.check(state, now, cost),
            Limit::FixedWindow(a) => a.check(state, now, cost),
            Limit::Concurrency(a) => a.check(state, now, cost),
            Limit::Quota(a) => a.check(state, now, cost),
        }
    }

    /// Applies an admitted check of `cost` units at `now`. `lease` names the lease a
    /// concurrency limit records; other algorithms ignore it.
    pub fn commit(&self, state: &mut State, now: Nanos, cost: u64, lease: u64) {
        match self {
            Limit::Gcra(a) => a.commit(state, now, cost),
            Limit::TokenBucket(a) => a.commit(state, now, cost),
            Limit::SlidingWindow(a) => a.commit(state, now, cost),
            Limit::SlidingLog(a) => a.commit(state, now, cost),
            Limit::FixedWindow(a) => a.commit(state, now, cost),
            Limit::Concurrency(a) => a.commit(state, now, cost, lease),
            Limit::Quota(a) => a.commit(state, now, cost),
        }
    }

    /// The instant from which `state` reads exactly like [`State::Fresh`], so a store may
    /// drop it.
    pub fn idle_at(&self, state: &State) -> Nanos {
        match self {
            Limit::Gcra(a) => a.idle_at(state),
            Limit::TokenBucket(a) => a.idle_at(state),
            Limit::SlidingWindow(a) => a.idle_at(state),
            Limit::SlidingLog(a) => a.idle_at(state),
            Limit::FixedWindow(a) => a.idle_at(state),
            Limit::Concurrency(a) => a.idle_at(state),
            Limit::Quota(a) => a.idle_at(state),
        }
    }

    /// Check and, when admitted with a positive cost, commit: the whole transition
    /// `(state, now, cost) → (state', outcome)`.
    pub fn transition(&self, state: &mut State, now: Nanos, cost: u64, lease: u64) -> Outcome {
        let mut outcome = self.check(state, now, cost);
        if outcome.allowed && cost > 0 {
            self.commit(state, now, cost, lease);
            if matches!(self, Limit::Concurrency(_)) {
                outcome.lease = std::num::NonZeroU64::new(lease);
            }
        }
        outcome
    }
}

/// `a * b`, exactly: the product of two 64-bit numbers always fits in 128 bits.
#[inline]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "(2^64 - 1)^2 < 2^128: the product of two u64s cannot overflow a u128"
)]
pub(crate) fn wide_mul(a: u64, b: u64) -> u128 {
    u128::from(a) * u128::from(b)
}

/// `a * b / c` rounded down, saturating at `u64::MAX`; `c == 0` gives `u64::MAX`.
pub(crate) fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    wide_mul(a, b)
        .checked_div(u128::from(c))
        .map_or(u64::MAX, |q| u64::try_from(q).unwrap_or(u64::MAX))
}

/// `a * b / c` rounded up, saturating at `u64::MAX`; `c == 0` gives `u64::MAX`.
pub(crate) fn mul_div_ceil(a: u64, b: u64, c: u64) -> u64 {
    if c == 0 {
        return u64::MAX;
    }
    let q = wide_mul(a, b).div_ceil(u128::from(c));
    u64::try_from(q).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_state_is_small() {
        assert!(
            std::mem::size_of::<State>() <= 24,
            "{}",
            std::mem::size_of::<State>()
        );
    }

    #[test]
    fn mul_div_saturates() {
        assert_eq!(mul_div(u64::MAX, u64::MAX, 1), u64::MAX);
        assert_eq!(mul_div(7, 3, 2), 10);
        assert_eq!(mul_div_ceil(7, 3, 2), 11);
        assert_eq!(mul_div(1, 1, 0), u64::MAX);
    }
}
