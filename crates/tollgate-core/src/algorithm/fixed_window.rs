//! Fixed window: a count that resets at each window boundary.

use super::State;
use crate::outcome::Outcome;
use crate::time::{Nanos, window_start};

/// Where fixed windows start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    /// Windows are aligned to the clock (multiples of the period since the Unix epoch), so
    /// every counter of a rule resets at the same instant.
    #[default]
    Clock,
    /// A window opens at the first hit after the previous one closed.
    FirstHit,
}

/// Fixed window parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedWindow {
    /// Units per window.
    pub limit: u64,
    /// Window length.
    pub period: Nanos,
    /// Where windows start.
    pub anchor: Anchor,
}

impl FixedWindow {
    /// `limit` units per window of `period`.
    pub fn new(limit: u64, period: Nanos, anchor: Anchor) -> Self {
        FixedWindow {
            limit: limit.max(1),
            period: period.max(1),
            anchor,
        }
    }

    /// The current window's start and count.
    fn window(&self, state: &State, now: Nanos) -> (Nanos, u64) {
        let current = |start: Nanos| now < start.saturating_add(self.period);
        match (self.anchor, state) {
            (Anchor::Clock, State::Fixed { start, count }) if *start > now || current(*start) => {
                (*start, *count)
            }
            (Anchor::Clock, _) => (window_start(now, self.period), 0),
            (Anchor::FirstHit, State::Fixed { start, count }) if current(*start) => {
                (*start, *count)
            }
            (Anchor::FirstHit, _) => (now, 0),
        }
    }

    pub(crate) fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        let (start, count) = self.window(state, now);
        let end = start.saturating_add(self.period).saturating_sub(now);
        let after = count.saturating_add(cost);
        if after <= self.limit {
            let reset = if after > 0 { end } else { 0 };
            Outcome::allow(self.limit, self.limit.saturating_sub(after), reset)
        } else {
            let reset = if count > 0 { end } else { 0 };
            let retry = (cost <= self.limit).then_some(end);
            Outcome::deny(self.limit, self.limit.saturating_sub(count), reset, retry)
        }
    }

    pub(crate) fn commit(&self, state: &mut State, now: Nanos, cost: u64) {
        let (start, count) = self.window(state, now);
        *state = State::Fixed {
            start,
            count: count.saturating_add(cost),
        };
    }

    pub(crate) fn idle_at(&self, state: &State) -> Nanos {
        match *state {
            State::Fixed { start, .. } => start.saturating_add(self.period),
            _ => 0,
        }
    }
}
