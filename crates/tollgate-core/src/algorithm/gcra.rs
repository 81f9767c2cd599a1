//! GCRA, the generic cell rate algorithm: one timestamp of state.
//!
//! Requests are spaced by an emission interval `T = period / limit`. The state is the
//! theoretical arrival time (TAT) of the next request; a request of cost `c` is admitted
//! when `max(TAT, now) + c·T − now ≤ τ`, where the tolerance `τ = (limit + burst)·T` lets
//! `limit + burst` requests through at once after an idle spell.

use super::State;
use super::divisor::Divisor;
use crate::outcome::Outcome;
use crate::time::Nanos;

/// GCRA parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gcra {
    /// Sustained units per period.
    pub limit: u64,
    /// The period.
    pub period: Nanos,
    /// Units allowed at once beyond `limit`.
    pub burst: u64,
    interval: Nanos,
    per_interval: Divisor,
    capacity: u64,
    tolerance: Nanos,
}

impl Gcra {
    /// `limit` units per `period`, with up to `limit + burst` at once. `limit` and `period`
    /// must be positive (policy validation guarantees it; zero is clamped to one).
    pub fn new(limit: u64, period: Nanos, burst: u64) -> Self {
        let limit = limit.max(1);
        let period = period.max(1);
        // Rounding the interval up keeps the long-run rate at or below limit/period.
        let interval = period.div_ceil(limit).max(1);
        let capacity = limit.saturating_add(burst);
        Gcra {
            limit,
            period,
            burst,
            interval,
            per_interval: Divisor::new(interval),
            capacity,
            tolerance: capacity.saturating_mul(interval),
        }
    }

    fn tat(state: &State, now: Nanos) -> Nanos {
        match state {
            State::Gcra { tat } => (*tat).max(now),
            _ => now,
        }
    }

    fn remaining(&self, tat: Nanos, now: Nanos) -> u64 {
        self.per_interval
            .divide(now.saturating_add(self.tolerance).saturating_sub(tat))
    }

    pub(crate) fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        self.check_tat(Self::tat(state, now), now, cost)
    }

    /// [`check`](Self::check) on a bare TAT; any TAT at or before `now` is a full counter.
    #[inline]
    pub(crate) fn check_tat(&self, tat: Nanos, now: Nanos, cost: u64) -> Outcome {
        let tat = tat.max(now);
        let new_tat = tat.saturating_add(cost.saturating_mul(self.interval));
        let allow_at = new_tat.saturating_sub(self.tolerance);
        if cost <= self.capacity && allow_at <= now {
            let after = if cost == 0 { tat } else { new_tat };
            Outcome::allow(
                self.capacity,
                self.remaining(after, now),
                after.saturating_sub(now),
            )
        } else {
            let retry = (cost <= self.capacity).then(|| allow_at.saturating_sub(now));
            Outcome::deny(
                self.capacity,
                self.remaining(tat, now),
                tat.saturating_sub(now),
                retry,
            )
        }
    }

    pub(crate) fn commit(&self, state: &mut State, now: Nanos, cost: u64) {
        *state = State::Gcra {
            tat: self.next_tat(Self::tat(state, now), now, cost),
        };
    }

    /// The TAT after admitting `cost` at `now`. Kept below 2^62 (the year 2116), as the
    /// memory store uses the two top bits of a slot's TAT to mark it held or in use.
    #[inline]
    pub(crate) fn next_tat(&self, tat: Nanos, now: Nanos, cost: u64) -> Nanos {
        tat.max(now)
            .saturating_add(cost.saturating_mul(self.interval))
            .min((1 << 62) - 1)
    }

    pub(crate) fn idle_at(&self, state: &State) -> Nanos {
        match state {
            State::Gcra { tat } => *tat,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NANOS_PER_SEC as S;

    #[test]
    fn burst_then_spacing() {
        let g = super::super::Limit::Gcra(Gcra::new(10, S, 5));
        let mut st = State::Fresh;
        let t0 = 1_000 * S;
        for i in 0..15 {
            let o = g.transition(&mut st, t0, 1, 0);
            assert!(o.allowed, "request {i}");
            assert_eq!(o.remaining, 14 - i);
        }
        let o = g.transition(&mut st, t0, 1, 0);
        assert!(!o.allowed);
        assert_eq!(o.retry_after, Some(S / 10));
        assert!(g.transition(&mut st, t0 + S / 10, 1, 0).allowed);
        assert!(!g.transition(&mut st, t0 + S / 10, 20, 0).allowed);
        assert_eq!(g.check(&st, t0, 16).retry_after, None);
    }
}
