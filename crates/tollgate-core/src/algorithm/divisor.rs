//! Division by a number fixed when a limit is built, done as a multiply and two shifts.
//!
//! A GCRA check divides by its emission interval to say how many requests remain. A
//! hardware divide takes tens of cycles where the rest of a check takes a few; the
//! interval is known when the rule is compiled, so the quotient comes from a precomputed
//! reciprocal instead (Granlund and Montgomery, "Division by invariant integers using
//! multiplication", 1994, figure 4.1: exact for every 64-bit dividend and divisor).

use super::wide_mul;

/// `n / d` for a `d` fixed in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Divisor {
    magic: u64,
    shift1: u32,
    shift2: u32,
}

impl Divisor {
    /// Prepares division by `d` (0 is taken as 1).
    #[allow(
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        reason = "d is at least 1 and 2^(l-1) < d <= 2^l, so no step wraps and the magic \
                  number fits in 64 bits (see the comments)"
    )]
    pub(crate) fn new(d: u64) -> Self {
        let d = d.max(1);
        // ceil(log2 d): 0 for d = 1, at most 64.
        let l = 64 - (d - 1).leading_zeros();
        let d = u128::from(d);
        // floor(2^64 (2^l - d) / d) + 1, which is at most 2^64 - 1 because 2^(l-1) < d.
        let magic = ((((1u128 << l) - d) << 64) / d + 1) as u64;
        Divisor {
            magic,
            shift1: l.min(1),
            shift2: l.saturating_sub(1),
        }
    }

    /// `n / d`, exactly.
    #[inline]
    #[allow(
        clippy::arithmetic_side_effects,
        reason = "t is at most n, so neither n - t nor t + (n - t) / 2 can wrap"
    )]
    pub(crate) fn divide(self, n: u64) -> u64 {
        let t = (wide_mul(self.magic, n) >> 64) as u64;
        // t ≤ n, and t + (n - t) / 2 ≤ n: neither step can wrap.
        (t + ((n - t) >> self.shift1)) >> self.shift2
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
    use super::Divisor;
    use proptest::prelude::*;

    #[test]
    fn edges_divide_exactly() {
        let ds = [
            1,
            2,
            3,
            7,
            10,
            1_000,
            1 << 32,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX,
        ];
        for d in ds {
            let div = Divisor::new(d);
            for n in [
                0,
                1,
                d - 1,
                d,
                d.saturating_add(1),
                u64::MAX / 2,
                u64::MAX - 1,
                u64::MAX,
            ] {
                assert_eq!(div.divide(n), n / d, "{n} / {d}");
            }
        }
        assert_eq!(Divisor::new(0).divide(42), 42);
    }

    proptest! {
        #[test]
        fn any_division_is_exact(n in any::<u64>(), d in 1..=u64::MAX) {
            prop_assert_eq!(Divisor::new(d).divide(n), n / d);
        }

        #[test]
        fn small_divisors_of_large_numbers_are_exact(n in any::<u64>(), d in 1u64..100_000) {
            prop_assert_eq!(Divisor::new(d).divide(n), n / d);
        }
    }
}
