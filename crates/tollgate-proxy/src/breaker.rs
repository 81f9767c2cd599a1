//! A circuit breaker per upstream: it opens on consecutive failures or on a failed share of
//! the tries of a rolling window, answers at once while open, lets one probe through once
//! its open spell is over, and closes when the probe succeeds.
//!
//! Every method takes the instant, so tests move time rather than wait.

use std::time::Instant;

use parking_lot::Mutex;

use crate::config::BreakerConfig;

/// Slices of the rolling window.
const SLICES: usize = 10;

/// The slices of the window before the current one.
const OLDER_SLICES: u64 = SLICES as u64 - 1;

/// What the breaker lets a try do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead.
    Yes,
    /// Go ahead as the one probe of a half-open breaker.
    Probe,
    /// Do not try: the breaker is open.
    No,
}

/// The breaker's state, as the `tollgate_proxy_breaker_state` gauge reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Tries go ahead.
    Closed = 0,
    /// Tries are refused.
    Open = 1,
    /// One probe is in flight or may go.
    HalfOpen = 2,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// When an open breaker lets its probe through.
    until: Instant,
    probing: bool,
    consecutive: u32,
    /// Tries and failures per slice, and the slice each counts (its start / slice length).
    slices: [(u64, u32, u32); SLICES],
}

/// One upstream's breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    epoch: Instant,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker; `epoch` is any instant before those it will be given.
    pub fn new(config: BreakerConfig, epoch: Instant) -> Self {
        Breaker {
            config,
            epoch,
            inner: Mutex::new(Inner {
                state: State::Closed,
                until: epoch,
                probing: false,
                consecutive: 0,
                slices: [(u64::MAX, 0, 0); SLICES],
            }),
        }
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> State {
        let inner = self.inner.lock();
        match inner.state {
            State::Open if now >= inner.until => State::HalfOpen,
            s => s,
        }
    }

    /// Whether a try may go at `now`.
    pub fn admit(&self, now: Instant) -> Admit {
        let mut inner = self.inner.lock();
        match inner.state {
            State::Closed => Admit::Yes,
            State::Open if now < inner.until => Admit::No,
            State::Open | State::HalfOpen if !inner.probing => {
                inner.state = State::HalfOpen;
                inner.probing = true;
                Admit::Probe
            }
            State::Open | State::HalfOpen => Admit::No,
        }
    }

    /// When an open breaker lets its next probe through.
    pub fn retry_at(&self) -> Instant {
        self.inner.lock().until
    }

    /// Forgets a try admitted as `admit` that was never sent: a probe that was not sent
    /// leaves the next one free to go.
    pub fn abandon(&self, admit: Admit) {
        if admit == Admit::Probe {
            self.inner.lock().probing = false;
        }
    }

    /// Records how a try admitted as `admit` ended.
    pub fn record(&self, now: Instant, admit: Admit, ok: bool) {
        let slice_len = self
            .config
            .window
            .as_nanos()
            .checked_div(SLICES as u128)
            .unwrap_or(0);
        let tick = u64::try_from(
            now.saturating_duration_since(self.epoch)
                .as_nanos()
                .checked_div(slice_len)
                .unwrap_or(0),
        )
        .unwrap_or(u64::MAX);
        let mut inner = self.inner.lock();
        if admit == Admit::Probe {
            inner.probing = false;
            if ok {
                inner.state = State::Closed;
                inner.consecutive = 0;
                inner.slices = [(u64::MAX, 0, 0); SLICES];
            } else {
                self.open(&mut inner, now);
            }
            return;
        }
        if inner.state != State::Closed {
            return;
        }
        let slot = usize::try_from(tick.checked_rem(SLICES as u64).unwrap_or(0)).unwrap_or(0);
        if let Some(s) = inner.slices.get_mut(slot) {
            if s.0 != tick {
                *s = (tick, 0, 0);
            }
            s.1 = s.1.saturating_add(1);
            if !ok {
                s.2 = s.2.saturating_add(1);
            }
        }
        inner.consecutive = if ok {
            0
        } else {
            inner.consecutive.saturating_add(1)
        };
        let oldest = tick.saturating_sub(OLDER_SLICES);
        let (tries, failed) = inner
            .slices
            .iter()
            .filter(|s| s.0 != u64::MAX && s.0 >= oldest)
            .fold((0u32, 0u32), |(t, f), s| {
                (t.saturating_add(s.1), f.saturating_add(s.2))
            });
        let ratio_trips = tries >= self.config.min_requests
            && f64::from(failed) >= self.config.error_ratio * f64::from(tries);
        if !ok && (inner.consecutive >= self.config.failures || ratio_trips) {
            self.open(&mut inner, now);
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        inner.state = State::Open;
        inner.until = now.checked_add(self.config.open_for).unwrap_or(now);
        inner.consecutive = 0;
        inner.slices = [(u64::MAX, 0, 0); SLICES];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn breaker() -> (Breaker, Instant) {
        let t0 = Instant::now();
        let config = BreakerConfig {
            failures: 3,
            error_ratio: 0.5,
            window: Duration::from_secs(10),
            min_requests: 10,
            open_for: Duration::from_secs(1),
        };
        (Breaker::new(config, t0), t0)
    }

    #[test]
    fn consecutive_failures_open_it_and_a_good_probe_closes_it() {
        let (b, t0) = breaker();
        for _ in 0..2 {
            b.record(t0, Admit::Yes, false);
        }
        b.record(t0, Admit::Yes, true);
        b.record(t0, Admit::Yes, false);
        assert_eq!(b.admit(t0), Admit::Yes, "a success between resets the run");
        b.record(t0, Admit::Yes, false);
        b.record(t0, Admit::Yes, false);
        assert_eq!(b.admit(t0), Admit::No);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(b.state(later), State::HalfOpen);
        assert_eq!(b.admit(later), Admit::Probe);
        assert_eq!(b.admit(later), Admit::No, "one probe at a time");
        b.record(later, Admit::Probe, true);
        assert_eq!(b.admit(later), Admit::Yes);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let (b, t0) = breaker();
        for _ in 0..3 {
            b.record(t0, Admit::Yes, false);
        }
        let later = t0 + Duration::from_secs(1);
        assert_eq!(b.admit(later), Admit::Probe);
        b.record(later, Admit::Probe, false);
        assert_eq!(b.admit(later + Duration::from_millis(999)), Admit::No);
        assert_eq!(b.admit(later + Duration::from_secs(1)), Admit::Probe);
    }

    #[test]
    fn half_of_the_window_failing_opens_it_but_old_failures_age_out() {
        let (b, t0) = breaker();
        // Alternating: never three in a row, but half failed once there are ten.
        for i in 0..9 {
            b.record(t0, Admit::Yes, i % 2 == 1);
        }
        assert_eq!(b.admit(t0), Admit::Yes);
        b.record(t0, Admit::Yes, false);
        assert_eq!(b.admit(t0), Admit::No);

        let (b, t0) = breaker();
        for i in 0..9 {
            b.record(t0, Admit::Yes, i % 2 == 1);
        }
        // Ten seconds on, those tries have left the window.
        let later = t0 + Duration::from_secs(11);
        b.record(later, Admit::Yes, false);
        assert_eq!(b.admit(later), Admit::Yes);
    }
}
