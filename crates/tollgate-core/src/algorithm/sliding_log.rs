//! Sliding log: an exact record of admissions in the last period.
//!
//! Exact where the two-window counter estimates, at the price of one entry per admitted
//! request; the policy caps its limit so the log stays bounded.

use std::collections::VecDeque;

use super::State;
use crate::outcome::Outcome;
use crate::time::Nanos;

/// The largest `limit` a sliding log accepts: it bounds the log's length.
pub const MAX_LOG_LIMIT: u64 = 100_000;

/// Sliding log parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingLog {
    /// Units per period (at most [`MAX_LOG_LIMIT`]).
    pub limit: u64,
    /// The period.
    pub period: Nanos,
}

/// The admissions of one counter, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    entries: VecDeque<(Nanos, u64)>,
}

impl SlidingLog {
    /// `limit` units per `period`; `limit` is clamped to `1..=MAX_LOG_LIMIT`.
    pub fn new(limit: u64, period: Nanos) -> Self {
        SlidingLog {
            limit: limit.clamp(1, MAX_LOG_LIMIT),
            period: period.max(1),
        }
    }

    /// The entries still inside the window at `now`, oldest first.
    fn live<'a>(&self, state: &'a State, now: Nanos) -> impl Iterator<Item = (Nanos, u64)> + 'a {
        let period = self.period;
        let entries = match state {
            State::Log(log) => Some(log.entries.iter()),
            _ => None,
        };
        entries
            .into_iter()
            .flatten()
            .copied()
            .filter(move |(at, _)| at.saturating_add(period) > now)
    }

    pub(crate) fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        let used: u64 = self.live(state, now).map(|(_, c)| c).sum();
        let newest = self.live(state, now).last().map(|(at, _)| at);
        let reset_from = |at: Option<Nanos>| {
            at.map_or(0, |at| at.saturating_add(self.period).saturating_sub(now))
        };
        if cost <= self.limit && used.saturating_add(cost) <= self.limit {
            let after = used.saturating_add(cost);
            let newest = if cost > 0 { Some(now) } else { newest };
            return Outcome::allow(
                self.limit,
                self.limit.saturating_sub(after),
                reset_from(newest),
            );
        }
        let retry = (cost <= self.limit).then(|| {
            // Wait until enough of the oldest entries have left the window.
            let mut left = used;
            let mut at = now;
            for (t, c) in self.live(state, now) {
                if left.saturating_add(cost) <= self.limit {
                    break;
                }
                left = left.saturating_sub(c);
                at = t.saturating_add(self.period);
            }
            at.saturating_sub(now)
        });
        Outcome::deny(
            self.limit,
            self.limit.saturating_sub(used),
            reset_from(newest),
            retry,
        )
    }

    pub(crate) fn commit(&self, state: &mut State, now: Nanos, cost: u64) {
        if !matches!(state, State::Log(_)) {
            *state = State::Log(Box::default());
        }
        if let State::Log(log) = state {
            let period = self.period;
            while log
                .entries
                .front()
                .is_some_and(|(at, _)| at.saturating_add(period) <= now)
            {
                log.entries.pop_front();
            }
            log.entries.push_back((now, cost));
        }
    }

    pub(crate) fn idle_at(&self, state: &State) -> Nanos {
        match state {
            State::Log(log) => log
                .entries
                .iter()
                .map(|(at, _)| at.saturating_add(self.period))
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }
}
