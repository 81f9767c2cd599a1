//! Token bucket: a bucket of `limit + burst` tokens refilled at `limit` per period.
//!
//! Tokens are kept in millionths so slow refill rates lose nothing to rounding, and the
//! refill clock only advances by the time the whole millionths it credited took, so frequent
//! calls cannot starve a slow bucket.

use super::{State, mul_div, mul_div_ceil};
use crate::outcome::Outcome;
use crate::time::Nanos;

const SCALE: u64 = 1_000_000;

/// Token bucket parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens added per period.
    pub limit: u64,
    /// The refill period.
    pub period: Nanos,
    /// Tokens the bucket holds beyond `limit`.
    pub burst: u64,
    capacity: u64,
}

impl TokenBucket {
    /// A bucket of `limit + burst` tokens refilled at `limit` per `period`. `limit + burst`
    /// must stay under 10¹² (policy validation guarantees it).
    pub fn new(limit: u64, period: Nanos, burst: u64) -> Self {
        let limit = limit.max(1);
        TokenBucket {
            limit,
            period: period.max(1),
            burst,
            capacity: limit.saturating_add(burst),
        }
    }

    fn full(&self) -> u64 {
        self.capacity.saturating_mul(SCALE)
    }

    /// The bucket's level at `now` and the instant it is accounted to.
    fn level(&self, state: &State, now: Nanos) -> (u64, Nanos) {
        let State::Bucket { micro_tokens, last } = *state else {
            return (self.full(), now);
        };
        if now <= last {
            return (micro_tokens.min(self.full()), last);
        }
        let added = mul_div(
            now.saturating_sub(last),
            self.limit.saturating_mul(SCALE),
            self.period,
        );
        let level = micro_tokens.saturating_add(added);
        if level >= self.full() {
            return (self.full(), now);
        }
        let spent = mul_div_ceil(added, self.period, self.limit.saturating_mul(SCALE));
        (level, last.saturating_add(spent).min(now))
    }

    /// Time from `from` until `deficit` millionths have been refilled.
    fn refill_time(&self, deficit: u64) -> Nanos {
        mul_div_ceil(deficit, self.period, self.limit.saturating_mul(SCALE))
    }

    pub(crate) fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        let (level, at) = self.level(state, now);
        let need = cost.saturating_mul(SCALE);
        let until = |deficit: u64| {
            at.saturating_add(self.refill_time(deficit))
                .saturating_sub(now)
        };
        if cost <= self.capacity && need <= level {
            let after = level.saturating_sub(need);
            let reset = if after == self.full() {
                0
            } else {
                until(self.full().saturating_sub(after))
            };
            Outcome::allow(self.capacity, after / SCALE, reset)
        } else {
            let retry = (cost <= self.capacity).then(|| until(need.saturating_sub(level)));
            let reset = if level == self.full() {
                0
            } else {
                until(self.full().saturating_sub(level))
            };
            Outcome::deny(self.capacity, level / SCALE, reset, retry)
        }
    }

    pub(crate) fn commit(&self, state: &mut State, now: Nanos, cost: u64) {
        let (level, last) = self.level(state, now);
        *state = State::Bucket {
            micro_tokens: level.saturating_sub(cost.saturating_mul(SCALE)),
            last,
        };
    }

    pub(crate) fn idle_at(&self, state: &State) -> Nanos {
        match *state {
            State::Bucket { micro_tokens, last } => {
                last.saturating_add(self.refill_time(self.full().saturating_sub(micro_tokens)))
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Limit;
    use crate::time::NANOS_PER_SEC as S;

    #[test]
    fn slow_refill_is_not_starved_by_frequent_calls() {
        // One token per day, polled every second.
        let b = Limit::TokenBucket(TokenBucket::new(1, 86_400 * S, 0));
        let mut st = State::Fresh;
        let t0 = 10 * S;
        assert!(b.transition(&mut st, t0, 1, 0).allowed);
        let mut t = t0;
        let mut admitted_at = None;
        while t < t0 + 2 * 86_400 * S {
            t += S;
            if b.transition(&mut st, t, 1, 0).allowed {
                admitted_at = Some(t);
                break;
            }
        }
        assert_eq!(admitted_at, Some(t0 + 86_400 * S));
    }
}
