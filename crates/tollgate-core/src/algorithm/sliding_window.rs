//! Sliding window, the weighted two-window counter: O(1) state, approximate.
//!
//! Windows are aligned to the clock. The estimate of units in the last period is
//! `prev · (P − e)/P + cur`, where `e` is the time elapsed in the current window; a cost is
//! admitted when the estimate plus the cost stays within the limit. The comparison is done
//! in exact integers (`prev·(P−e) + (cur+cost)·P ≤ limit·P`), so there is no float drift.

use super::{State, wide_mul};
use crate::outcome::Outcome;
use crate::time::{Nanos, window_start};

/// Sliding window parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Units per period (at most `u32::MAX`).
    pub limit: u64,
    /// The period.
    pub period: Nanos,
}

struct View {
    start: Nanos,
    elapsed: Nanos,
    prev: u64,
    cur: u64,
}

impl SlidingWindow {
    /// `limit` units per `period`; `limit` is clamped to `1..=u32::MAX`.
    pub fn new(limit: u64, period: Nanos) -> Self {
        SlidingWindow {
            limit: limit.clamp(1, u64::from(u32::MAX)),
            period: period.max(1),
        }
    }

    fn view(&self, state: &State, now: Nanos) -> View {
        let aligned = window_start(now, self.period);
        match *state {
            // A clock that stepped back reads the stored window as current.
            State::Window { start, prev, cur } if start >= aligned => View {
                start,
                elapsed: now.saturating_sub(start),
                prev: u64::from(prev),
                cur: u64::from(cur),
            },
            State::Window { start, cur, .. } if start.saturating_add(self.period) == aligned => {
                View {
                    start: aligned,
                    elapsed: now.saturating_sub(aligned),
                    prev: u64::from(cur),
                    cur: 0,
                }
            }
            _ => View {
                start: aligned,
                elapsed: now.saturating_sub(aligned),
                prev: 0,
                cur: 0,
            },
        }
    }

    /// Units in use scaled by the period: `prev·(P−e) + cur·P` (`P−e` is 0 once `e ≥ P`),
    /// saturating, which reads as over any limit.
    fn used_scaled(&self, v: &View, cur: u64) -> u128 {
        let unexpired = self.period.saturating_sub(v.elapsed);
        wide_mul(v.prev, unexpired).saturating_add(wide_mul(cur, self.period))
    }

    fn reset(&self, v: &View, cur: u64, now: Nanos) -> Nanos {
        if cur > 0 {
            v.start
                .saturating_add(self.period.saturating_mul(2))
                .saturating_sub(now)
        } else if v.prev > 0 {
            v.start.saturating_add(self.period).saturating_sub(now)
        } else {
            0
        }
    }

    pub(crate) fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        let v = self.view(state, now);
        let p = u128::from(self.period);
        let cap = wide_mul(self.limit, self.period);
        let remaining = |cur: u64| {
            // The period is at least 1 (see `new`).
            let left = cap.saturating_sub(self.used_scaled(&v, cur)).checked_div(p);
            left.map_or(0, |left| u64::try_from(left).unwrap_or(u64::MAX))
        };
        if cost <= self.limit {
            let cur = v.cur.saturating_add(cost);
            if self.used_scaled(&v, cur) <= cap {
                return Outcome::allow(self.limit, remaining(cur), self.reset(&v, cur, now));
            }
        }
        let retry = (cost <= self.limit).then(|| self.retry_after(&v, cost, now));
        Outcome::deny(
            self.limit,
            remaining(v.cur),
            self.reset(&v, v.cur, now),
            retry,
        )
    }

    /// The wait until `cost` fits, for a cost that does not fit now and is at most the limit.
    fn retry_after(&self, v: &View, cost: u64, now: Nanos) -> Nanos {
        // Earliest elapsed time `e` in a window whose previous count is `prev` and current
        // count `cur` at which `prev·(P−e) ≤ (limit − cur − cost)·P`. Each call has
        // `cur + cost ≤ limit`.
        let earliest = |prev: u64, cur: u64| -> Nanos {
            let room = wide_mul(
                self.limit.saturating_sub(cur).saturating_sub(cost),
                self.period,
            );
            let Some(weight) = room.checked_div(u128::from(prev)) else {
                return 0;
            };
            let weight = u64::try_from(weight).map_or(self.period, |w| w.min(self.period));
            self.period.saturating_sub(weight)
        };
        let at = if v.cur.saturating_add(cost) <= self.limit {
            v.start.saturating_add(earliest(v.prev, v.cur))
        } else {
            v.start
                .saturating_add(self.period)
                .saturating_add(earliest(v.cur, 0))
        };
        at.saturating_sub(now)
    }

    pub(crate) fn commit(&self, state: &mut State, now: Nanos, cost: u64) {
        let v = self.view(state, now);
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        *state = State::Window {
            start: v.start,
            prev: clamp(v.prev),
            cur: clamp(v.cur.saturating_add(cost)),
        };
    }

    pub(crate) fn idle_at(&self, state: &State) -> Nanos {
        match *state {
            State::Window { start, .. } => start.saturating_add(self.period.saturating_mul(2)),
            _ => 0,
        }
    }
}
