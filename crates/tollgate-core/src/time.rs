//! Time as Tollgate sees it: nanoseconds since the Unix epoch, always passed in.
//!
//! Algorithms never read a clock; callers do, through a [`Clock`], so tests move a
//! [`ManualClock`] instead of sleeping and the Redis store can use the server's `TIME`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (UTC). Fits dates until the year 2554.
pub type Nanos = u64;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Nanoseconds in one millisecond.
pub const NANOS_PER_MILLI: u64 = 1_000_000;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time in nanoseconds since the Unix epoch.
    fn now(&self) -> Nanos;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Nanos {
        system_now()
    }
}

fn system_now() -> Nanos {
    // A clock set before 1970 reads as the epoch rather than failing a request.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A monotonic clock read from the CPU's time-stamp counter, anchored to the wall
/// clock once at creation.
///
/// It costs a few nanoseconds per read where [`SystemClock`] costs a system call
/// or a vDSO page read, and it never steps backwards when NTP adjusts the wall
/// clock. Create one per process and share it.
#[derive(Debug, Clone)]
pub struct FastClock {
    clock: quanta::Clock,
    origin_raw: u64,
    origin: Nanos,
}

impl FastClock {
    /// Anchors a new fast clock at the current wall-clock time.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin_raw = clock.raw();
        FastClock {
            clock,
            origin_raw,
            origin: system_now(),
        }
    }
}

impl Default for FastClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FastClock {
    #[inline]
    fn now(&self) -> Nanos {
        // Raw counter ticks scaled straight to nanoseconds: no `Duration` on the way.
        let elapsed = self.clock.delta_as_nanos(self.origin_raw, self.clock.raw());
        self.origin.saturating_add(elapsed)
    }
}

/// A clock that only moves when told to: the clock of tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A manual clock reading `start`.
    pub fn new(start: Nanos) -> Self {
        ManualClock {
            now: AtomicU64::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = duration_nanos(by);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Sets the clock to `to`, which may be earlier than the current reading.
    pub fn set(&self, to: Nanos) {
        self.now.store(to, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.now.load(Ordering::Relaxed)
    }
}

/// Milliseconds since the Unix epoch, as records (usage events, audit entries, key
/// expiries) keep time; a clock set before 1970 reads as the epoch.
pub fn now_ms() -> i64 {
    i64::try_from(system_now() / NANOS_PER_MILLI).unwrap_or(i64::MAX)
}

/// A [`Duration`] in whole nanoseconds, saturating at `u64::MAX`.
pub fn duration_nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The start of the window of `period` that holds `t`, windows counted from the epoch;
/// `t` itself for a period of 0.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "t % period is at most t, so the subtraction cannot wrap"
)]
pub fn window_start(t: Nanos, period: Nanos) -> Nanos {
    t.checked_rem(period).map_or(t, |r| t - r)
}

/// Rounds nanoseconds up to whole seconds, as `Retry-After` and `RateLimit` need.
pub fn ceil_secs(ns: Nanos) -> u64 {
    ns.div_ceil(NANOS_PER_SEC)
}

/// Rounds nanoseconds up to whole milliseconds.
pub fn ceil_millis(ns: Nanos) -> u64 {
    ns.div_ceil(NANOS_PER_MILLI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(5);
        assert_eq!(c.now(), 5);
        c.advance(Duration::from_nanos(10));
        assert_eq!(c.now(), 15);
        c.set(u64::MAX - 1);
        c.advance(Duration::from_secs(10));
        assert_eq!(c.now(), u64::MAX);
    }

    #[test]
    fn fast_clock_tracks_wall_clock() {
        let fast = FastClock::new();
        let a = fast.now();
        let wall = SystemClock.now();
        assert!(a.abs_diff(wall) < 5 * NANOS_PER_SEC);
        assert!(fast.now() >= a);
    }

    #[test]
    fn rounding_is_up() {
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(NANOS_PER_SEC), 1);
        assert_eq!(ceil_secs(NANOS_PER_SEC + 1), 2);
        assert_eq!(ceil_millis(1), 1);
    }
}
