//! A latency histogram for `tollgate loadtest`: log-linear buckets (32 per power of two,
//! so a recorded value is reported within one part in 32 of itself), fixed memory, no
//! dependency.

/// Values below this are kept exactly, one bucket each.
const EXACT: u64 = 64;
/// Buckets per power of two above `EXACT`.
const SUB: u64 = 32;
/// Enough buckets for every `u64`.
const BUCKETS: usize = 1920;

/// Counts of values (microseconds, for the load generator) in log-linear buckets.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

/// The bucket of `v`: its top six bits and how far they were shifted.
fn index(v: u64) -> usize {
    if v < EXACT {
        return usize::try_from(v).unwrap_or(0);
    }
    let top = 63_u32.saturating_sub(v.leading_zeros());
    let shift = top.saturating_sub(5);
    let mantissa = v.checked_shr(shift).unwrap_or(0);
    let i = u64::from(shift)
        .saturating_mul(SUB)
        .saturating_add(mantissa);
    usize::try_from(i).unwrap_or(BUCKETS.saturating_sub(1))
}

/// The highest value bucket `i` holds.
fn upper(i: usize) -> u64 {
    let i = u64::try_from(i).unwrap_or(u64::MAX);
    if i < EXACT {
        return i;
    }
    let shift = u32::try_from((i / SUB).saturating_sub(1)).unwrap_or(0);
    let mantissa = (i % SUB).saturating_add(SUB);
    // In u128: the top bucket's bound is 2^64, one past what a u64 holds.
    let bound = u128::from(mantissa.saturating_add(1))
        .checked_shl(shift)
        .unwrap_or(u128::MAX)
        .saturating_sub(1);
    u64::try_from(bound).unwrap_or(u64::MAX)
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c = c.saturating_add(1);
        }
        self.total = self.total.saturating_add(1);
        self.max = self.max.max(v);
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted, exactly.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0 to 1): the top of the bucket holding it, never above
    /// the maximum; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        // The rank is at least 1 and at most the total, so a float round trip is exact
        // enough for any count a run can reach.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0_u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*c);
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_hold_their_values() {
        let mut last = None;
        for v in (0..5000_u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(upper(i) >= v, "{v} in bucket {i} up to {}", upper(i));
            if let Some(prev) = last.filter(|_| v < 5000) {
                assert!(i == prev || i == prev + 1, "{v}");
            }
            last = (v < 5000).then_some(i);
        }
    }

    #[test]
    fn quantiles_are_within_the_bucket_error() {
        let mut h = Histogram::default();
        for v in 1..=10_000 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.max(), 10_000);
        let p50 = h.quantile(0.5);
        assert!((5000..=5000 + 5000 / 32).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(Histogram::default().quantile(0.99), 0);
    }
}
