//! Calendar quota: units per hour, day, week, month or year of a time zone, with optional
//! rollover of unused units into the next period, up to a cap.
//!
//! Unused units of a period roll into the next one only; a counter idle for a whole period
//! starts again with no carry. The allowance of a period is `limit + carry`, where
//! `carry = min(rollover_cap, previous allowance − previous use)`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::State;
use crate::outcome::Outcome;
use crate::time::{NANOS_PER_SEC, Nanos, window_start};

const NANOS_PER_MINUTE: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MINUTE;
const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;

/// The calendar unit a quota counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Calendar {
    /// From one o'clock to the next.
    Hour,
    /// From midnight to midnight.
    Day,
    /// From Monday 00:00 to the next Monday (ISO weeks).
    Week,
    /// From the 1st 00:00 to the next 1st.
    Month,
    /// From January 1st 00:00 to the next.
    Year,
}

impl Calendar {
    /// Parses `hour`, `day`, `week`, `month` or `year`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "hour" | "hourly" => Calendar::Hour,
            "day" | "daily" => Calendar::Day,
            "week" | "weekly" => Calendar::Week,
            "month" | "monthly" => Calendar::Month,
            "year" | "yearly" => Calendar::Year,
            _ => return None,
        })
    }

    /// The longest this period can last, a little over (used for expiry only).
    fn max_len(self) -> Nanos {
        match self {
            Calendar::Hour => 2 * NANOS_PER_HOUR,
            Calendar::Day => NANOS_PER_DAY + 2 * NANOS_PER_HOUR,
            Calendar::Week => 7 * NANOS_PER_DAY + 2 * NANOS_PER_HOUR,
            Calendar::Month => 31 * NANOS_PER_DAY + 2 * NANOS_PER_HOUR,
            Calendar::Year => 366 * NANOS_PER_DAY + 2 * NANOS_PER_HOUR,
        }
    }

    fn step(self) -> jiff::Span {
        match self {
            Calendar::Hour => 1.hour(),
            Calendar::Day => 1.day(),
            Calendar::Week => 1.week(),
            Calendar::Month => 1.month(),
            Calendar::Year => 1.year(),
        }
    }

    fn floor(self, dt: DateTime) -> Option<DateTime> {
        let date = dt.date();
        let day = match self {
            Calendar::Hour => return Some(date.at(dt.hour(), 0, 0, 0)),
            Calendar::Day => date,
            Calendar::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(back.days()).ok()?
            }
            Calendar::Month => date.first_of_month(),
            Calendar::Year => date.first_of_year(),
        };
        Some(Date::to_datetime(day, jiff::civil::Time::midnight()))
    }
}

/// One calendar period, as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodSpan {
    /// First instant of the period.
    pub start: Nanos,
    /// First instant of the next period.
    pub end: Nanos,
    /// First instant of the previous period.
    pub prev_start: Nanos,
}

impl PeriodSpan {
    /// The period's length.
    pub fn len(&self) -> Nanos {
        self.end.saturating_sub(self.start)
    }

    /// Whether the period is empty (never, for a real calendar).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Quota parameters.
#[derive(Debug, Clone)]
pub struct Quota {
    /// Units per period.
    pub limit: u64,
    /// The period.
    pub calendar: Calendar,
    /// The time zone whose calendar counts.
    pub time_zone: TimeZone,
    /// The most unused units carried into the next period (0: no rollover).
    pub rollover_cap: u64,
    // The current period, so most checks skip the calendar arithmetic.
    cache: Arc<ArcSwap<PeriodSpan>>,
}

impl PartialEq for Quota {
    fn eq(&self, other: &Self) -> bool {
        self.limit == other.limit
            && self.calendar == other.calendar
            && self.time_zone == other.time_zone
            && self.rollover_cap == other.rollover_cap
    }
}

fn minutes(ns: Nanos) -> u32 {
    u32::try_from(ns / NANOS_PER_MINUTE).unwrap_or(u32::MAX)
}

impl Quota {
    /// `limit` units per `calendar` period in `time_zone`, carrying at most `rollover_cap`
    /// unused units (clamped to `u32::MAX`) into the next period.
    pub fn new(limit: u64, calendar: Calendar, time_zone: TimeZone, rollover_cap: u64) -> Self {
        Quota {
            limit: limit.max(1),
            calendar,
            time_zone,
            rollover_cap: rollover_cap.min(u64::from(u32::MAX)),
            cache: Arc::new(ArcSwap::from_pointee(PeriodSpan {
                start: 0,
                end: 0,
                prev_start: 0,
            })),
        }
    }

    /// The period holding `now`.
    pub fn span(&self, now: Nanos) -> PeriodSpan {
        let cached = **self.cache.load();
        if cached.start <= now && now < cached.end {
            return cached;
        }
        let span = self.compute_span(now);
        self.cache.store(Arc::new(span));
        span
    }

    /// The boundaries around `now`: the previous period's start, this period's start and
    /// end, and the next period's end (for stores that count elsewhere, such as Redis).
    pub fn boundaries(&self, now: Nanos) -> [Nanos; 4] {
        let span = self.span(now);
        let next = self.compute_span(span.end);
        [span.prev_start, span.start, span.end, next.end]
    }

    fn compute_span(&self, now: Nanos) -> PeriodSpan {
        self.calendar_span(now).unwrap_or_else(|| {
            // Outside the calendar's range (year 9999 and beyond): fixed-length periods.
            let len = self.calendar.max_len();
            let start = window_start(now, len);
            PeriodSpan {
                start,
                end: start.saturating_add(len),
                prev_start: start.saturating_sub(len),
            }
        })
    }

    fn calendar_span(&self, now: Nanos) -> Option<PeriodSpan> {
        let ts = Timestamp::from_nanosecond(i128::from(now)).ok()?;
        let start = self.calendar.floor(self.time_zone.to_datetime(ts))?;
        let step = self.calendar.step();
        let instant = |dt: DateTime| -> Option<Nanos> {
            let ts = self
                .time_zone
                .to_ambiguous_timestamp(dt)
                .compatible()
                .ok()?;
            u64::try_from(ts.as_nanosecond()).ok()
        };
        Some(PeriodSpan {
            start: instant(start)?,
            end: instant(start.checked_add(step).ok()?)?,
            prev_start: instant(start.checked_sub(step).ok()?).unwrap_or(0),
        })
    }

    /// Use and carry of the period `span` for `state`.
    fn view(&self, state: &State, span: &PeriodSpan) -> (u64, u64) {
        match *state {
            State::Quota {
                used,
                period,
                carry,
            } if period == minutes(span.start) => (used, u64::from(carry)),
            State::Quota {
                used,
                period,
                carry,
            } if period == minutes(span.prev_start) => {
                let allowance = self.limit.saturating_add(u64::from(carry));
                (0, allowance.saturating_sub(used).min(self.rollover_cap))
            }
            _ => (0, 0),
        }
    }

    pub(crate) fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        let span = self.span(now);
        let (used, carry) = self.view(state, &span);
        let allowance = self.limit.saturating_add(carry);
        let to_end = span.end.saturating_sub(now);
        let after = used.saturating_add(cost);
        if after <= allowance {
            let reset = if after > 0 { to_end } else { 0 };
            return Outcome::allow(allowance, allowance.saturating_sub(after), reset);
        }
        let next_carry = allowance.saturating_sub(used).min(self.rollover_cap);
        let retry = if cost <= self.limit.saturating_add(next_carry) {
            Some(to_end)
        } else if cost <= self.limit.saturating_add(self.rollover_cap) {
            // Admitted once a full unused period has rolled over.
            let next = self.compute_span(span.end);
            Some(next.end.saturating_sub(now))
        } else {
            None
        };
        let reset = if used > 0 { to_end } else { 0 };
        Outcome::deny(allowance, allowance.saturating_sub(used), reset, retry)
    }

    pub(crate) fn commit(&self, state: &mut State, now: Nanos, cost: u64) {
        let span = self.span(now);
        let (used, carry) = self.view(state, &span);
        *state = State::Quota {
            used: used.saturating_add(cost),
            period: minutes(span.start),
            carry: u32::try_from(carry).unwrap_or(u32::MAX),
        };
    }

    pub(crate) fn idle_at(&self, state: &State) -> Nanos {
        match *state {
            State::Quota { period, .. } => {
                let start = u64::from(period).saturating_mul(NANOS_PER_MINUTE);
                let periods = if self.rollover_cap > 0 { 2 } else { 1 };
                start.saturating_add(self.calendar.max_len().saturating_mul(periods))
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Nanos {
        let ts: Timestamp = s.parse().unwrap();
        u64::try_from(ts.as_nanosecond()).unwrap()
    }

    #[test]
    fn month_in_a_time_zone() {
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let q = Quota::new(10, Calendar::Month, tz, 0);
        // 2026-03-01 00:00 in Paris is 2026-02-28 23:00 UTC.
        let s = q.span(at("2026-03-15T12:00:00Z"));
        assert_eq!(s.start, at("2026-02-28T23:00:00Z"));
        assert_eq!(s.end, at("2026-03-31T22:00:00Z"));
        assert_eq!(s.prev_start, at("2026-01-31T23:00:00Z"));
    }

    #[test]
    fn iso_week_starts_monday() {
        let q = Quota::new(10, Calendar::Week, TimeZone::UTC, 0);
        let s = q.span(at("2026-11-26T08:00:00Z"));
        assert_eq!(s.start, at("2026-11-23T00:00:00Z"));
        assert_eq!(s.len(), 7 * NANOS_PER_DAY);
    }
}
