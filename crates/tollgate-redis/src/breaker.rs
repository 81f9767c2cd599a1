//! A circuit breaker: after repeated failures the store stops calling Redis for a cool-down,
//! so decisions answer at once by their rules' fail policies; then one probe at a time
//! tests whether Redis is back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the breaker.
    pub failures: u32,
    /// How long it stays open before letting a probe through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 3,
            cool_down: Duration::from_millis(250),
        }
    }
}

/// What the breaker lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Redis answers; every call goes through.
    Closed,
    /// Redis failed; calls are refused until the cool-down ends.
    Open,
    /// One probe call is testing Redis.
    HalfOpen,
}

impl BreakerState {
    /// The state's name, for metrics and `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    until: Instant,
}

/// The breaker. Its lock is held for a few instructions, never across a call.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Permission to make one call; report how it went.
#[must_use]
pub(crate) struct Permit;

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                until: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit to call Redis, or none while the breaker is open.
    pub(crate) fn allow(&self, now: Instant) -> Option<Permit> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Some(Permit),
            // A probe that never reported (its caller gave up) is replaced after a
            // cool-down.
            BreakerState::Open | BreakerState::HalfOpen if now >= inner.until => {
                inner.state = BreakerState::HalfOpen;
                inner.until = later(now, self.config.cool_down);
                Some(Permit)
            }
            BreakerState::Open | BreakerState::HalfOpen => None,
        }
    }

    /// Records how a permitted call went.
    pub(crate) fn record(&self, _permit: Permit, ok: bool, now: Instant) {
        let mut inner = self.lock();
        if ok {
            inner.state = BreakerState::Closed;
            inner.failures = 0;
            return;
        }
        inner.failures = inner.failures.saturating_add(1);
        if inner.state == BreakerState::HalfOpen || inner.failures >= self.config.failures {
            if inner.state == BreakerState::Closed {
                tracing::warn!(
                    failures = inner.failures,
                    "redis store: circuit opened; decisions follow their fail policies"
                );
            }
            inner.state = BreakerState::Open;
            inner.until = later(now, self.config.cool_down);
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.lock().state
    }
}

/// `now + by`, or, for a `by` past what an `Instant` holds, about the latest instant it
/// does: a cool-down that long keeps the circuit open for good.
fn later(now: Instant, by: Duration) -> Instant {
    let mut by = by;
    loop {
        if let Some(at) = now.checked_add(by) {
            return at;
        }
        by = by.checked_div(2).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_probes_one_at_a_time() {
        let b = Breaker::new(BreakerConfig {
            failures: 2,
            cool_down: Duration::from_millis(100),
        });
        let t0 = Instant::now();
        let p = b.allow(t0).unwrap();
        b.record(p, false, t0);
        assert_eq!(b.state(), BreakerState::Closed);
        let p = b.allow(t0).unwrap();
        b.record(p, false, t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.allow(t0 + Duration::from_millis(99)).is_none());
        // After the cool-down: one probe, and no second one beside it.
        let t1 = t0 + Duration::from_millis(100);
        let probe = b.allow(t1).unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allow(t1).is_none());
        b.record(probe, true, t1);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_and_a_lost_probe_is_replaced() {
        let b = Breaker::new(BreakerConfig {
            failures: 1,
            cool_down: Duration::from_millis(100),
        });
        let t0 = Instant::now();
        let p = b.allow(t0).unwrap();
        b.record(p, false, t0);
        let t1 = t0 + Duration::from_millis(100);
        let probe = b.allow(t1).unwrap();
        b.record(probe, false, t1);
        assert_eq!(b.state(), BreakerState::Open);
        let t2 = t1 + Duration::from_millis(100);
        let lost = b.allow(t2).unwrap();
        drop(lost);
        assert!(b.allow(t2 + Duration::from_millis(50)).is_none());
        assert!(b.allow(t2 + Duration::from_millis(100)).is_some());
    }
}
