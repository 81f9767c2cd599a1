//! One objective's good and total requests per minute on this instance, in a ring as long
//! as its window.

use std::sync::Mutex;

use tollgate_registry::SloMinute;

const MINUTE_MS: i64 = 60_000;

/// A ring of minutes; each slot is reused when its minute comes round again.
#[derive(Debug)]
pub struct Minutes {
    slots: Mutex<Vec<SloMinute>>,
}

impl Minutes {
    /// A ring of `minutes` slots (at least 1).
    pub fn new(minutes: usize) -> Self {
        let empty = SloMinute {
            minute: i64::MIN,
            good: 0,
            total: 0,
        };
        Minutes {
            slots: Mutex::new(vec![empty; minutes.max(1)]),
        }
    }

    /// Counts one request at `now` (ms).
    pub fn record(&self, now: i64, good: bool) {
        let minute = now.div_euclid(MINUTE_MS).saturating_mul(MINUTE_MS);
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        let len = i64::try_from(slots.len()).unwrap_or(1);
        let at = usize::try_from(now.div_euclid(MINUTE_MS).rem_euclid(len)).unwrap_or(0);
        if let Some(slot) = slots.get_mut(at) {
            if slot.minute != minute {
                *slot = SloMinute {
                    minute,
                    good: 0,
                    total: 0,
                };
            }
            slot.total = slot.total.saturating_add(1);
            if good {
                slot.good = slot.good.saturating_add(1);
            }
        }
    }

    /// Good and total requests in the minutes that begin in `[from, to)`, for each of
    /// `froms`, read at one instant.
    pub fn sums_since(&self, froms: &[i64], to: i64) -> Vec<(u64, u64)> {
        let Ok(slots) = self.slots.lock() else {
            return vec![(0, 0); froms.len()];
        };
        froms
            .iter()
            .map(|&from| {
                slots
                    .iter()
                    .filter(|s| s.minute >= from && s.minute < to)
                    .fold((0u64, 0u64), |(g, t), s| {
                        (g.saturating_add(s.good), t.saturating_add(s.total))
                    })
            })
            .collect()
    }

    /// The minutes that begin in `[from, to)` with a request, oldest first.
    pub fn since(&self, from: i64, to: i64) -> Vec<SloMinute> {
        let Ok(slots) = self.slots.lock() else {
            return Vec::new();
        };
        let mut found: Vec<SloMinute> = slots
            .iter()
            .filter(|s| s.minute >= from && s.minute < to && s.total > 0)
            .copied()
            .collect();
        found.sort_by_key(|s| s.minute);
        found
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn sums(m: &Minutes, from: i64, to: i64) -> (u64, u64) {
        m.sums_since(&[from], to).first().copied().unwrap()
    }

    #[test]
    fn windows_read_together_each_count_their_own_minutes() {
        let m = Minutes::new(10);
        let t0 = 1_800_000_000_000;
        m.record(t0, false);
        m.record(t0 + 120_000, true);
        m.record(t0 + 240_000, true);
        let to = t0 + 300_000;
        assert_eq!(
            m.sums_since(&[t0, t0 + 60_000, t0 + 240_000, to], to),
            [(2, 3), (2, 2), (1, 1), (0, 0)]
        );
    }

    #[test]
    fn minutes_count_apart_and_old_ones_are_overwritten() {
        let m = Minutes::new(3);
        let t0 = 1_800_000_000_000;
        m.record(t0, true);
        m.record(t0 + 59_999, false);
        m.record(t0 + 60_000, true);
        assert_eq!(sums(&m, t0, t0 + 60_000), (1, 2));
        assert_eq!(sums(&m, t0, t0 + 120_000), (2, 3));
        // Three minutes later the first slot holds the new minute.
        m.record(t0 + 180_000, true);
        assert_eq!(sums(&m, t0, t0 + 60_000), (0, 0));
        assert_eq!(sums(&m, t0, t0 + 240_000), (2, 2));
        let since = m.since(t0, t0 + 240_000);
        assert_eq!(since.len(), 2);
        assert_eq!(since[0].minute, t0 + 60_000);
    }
}
