//! Billing periods: calendar months, weeks (from Monday) or days in a named time zone.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, civil::Date};

/// How long a billing period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    /// A calendar month.
    Month,
    /// A week from Monday.
    Week,
    /// A calendar day.
    Day,
}

impl PeriodKind {
    /// Parses `month`, `week` or `day`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "month" => PeriodKind::Month,
            "week" => PeriodKind::Week,
            "day" => PeriodKind::Day,
            _ => return None,
        })
    }
}

/// A period's bounds (ms since the epoch): its first instant and the one after its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first instant.
    pub start: i64,
    /// The instant after the last.
    pub end: i64,
}

/// How periods are cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// The periods' length.
    pub kind: PeriodKind,
    /// The zone whose midnights begin them.
    pub zone: TimeZone,
}

impl Calendar {
    /// The period holding instant `at` (ms); none for an instant outside the calendar's
    /// range.
    pub fn period_of(&self, at: i64) -> Option<Period> {
        let local = self.zone.to_datetime(Timestamp::from_millisecond(at).ok()?);
        let day = local.date();
        let first = match self.kind {
            PeriodKind::Month => day.first_of_month(),
            PeriodKind::Week => day
                .checked_sub(i64::from(day.weekday().to_monday_zero_offset()).days())
                .ok()?,
            PeriodKind::Day => day,
        };
        let next = match self.kind {
            PeriodKind::Month => first.checked_add(1.month()).ok()?,
            PeriodKind::Week => first.checked_add(7.days()).ok()?,
            PeriodKind::Day => first.checked_add(1.day()).ok()?,
        };
        Some(Period {
            start: self.midnight(first)?,
            end: self.midnight(next)?,
        })
    }

    /// The period before `p`.
    pub fn before(&self, p: Period) -> Option<Period> {
        self.period_of(p.start.checked_sub(1)?)
    }

    /// The first instant of local day `d` (a zone skipping midnight starts the day at
    /// the first instant it has).
    fn midnight(&self, d: Date) -> Option<i64> {
        let ts = self
            .zone
            .to_ambiguous_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .compatible()
            .ok()?;
        Some(ts.as_millisecond())
    }

    /// A period's name in the zone: `2026-12`, `2026-W49` or `2026-12-07`.
    pub fn name(&self, p: Period) -> String {
        let Some(day) = Timestamp::from_millisecond(p.start)
            .ok()
            .map(|t| self.zone.to_datetime(t).date())
        else {
            return p.start.to_string();
        };
        match self.kind {
            PeriodKind::Month => format!("{:04}-{:02}", day.year(), day.month()),
            PeriodKind::Week => {
                let week = day.iso_week_date();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
            PeriodKind::Day => format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn months_begin_at_the_zones_midnight() {
        let ny = Calendar {
            kind: PeriodKind::Month,
            zone: TimeZone::get("America/New_York").unwrap(),
        };
        // 04:59 UTC on 1 December is still 30 November in New York.
        let nov = ny.period_of(ms("2026-12-01T04:59:59.999Z")).unwrap();
        assert_eq!(
            nov.start,
            ms("2026-11-01T04:00:00Z"),
            "EDT until 1 November"
        );
        assert_eq!(nov.end, ms("2026-12-01T05:00:00Z"));
        assert_eq!(ny.name(nov), "2026-11");
        let dec = ny.period_of(ms("2026-12-01T05:00:00Z")).unwrap();
        assert_eq!(dec.start, nov.end);
        assert_eq!(ny.before(dec), Some(nov));
    }

    #[test]
    fn quarter_hour_zones_and_weeks_and_days() {
        let kathmandu = Calendar {
            kind: PeriodKind::Day,
            zone: TimeZone::get("Asia/Kathmandu").unwrap(),
        };
        let d = kathmandu.period_of(ms("2026-12-07T00:00:00Z")).unwrap();
        assert_eq!(d.start, ms("2026-12-06T18:15:00Z"));
        assert_eq!(d.end - d.start, 86_400_000);
        assert_eq!(d.start % tollgate_registry::BILLING_BUCKET_MS, 0);
        let utc_weeks = Calendar {
            kind: PeriodKind::Week,
            zone: TimeZone::UTC,
        };
        let w = utc_weeks.period_of(ms("2026-12-06T23:00:00Z")).unwrap();
        assert_eq!(w.start, ms("2026-11-30T00:00:00Z"), "a Monday");
        assert_eq!(utc_weeks.name(w), "2026-W49");
    }
}
