//! How far from its home a key's counter can be, and which slots were never used: what
//! lets a probe stop short of the end of its window on a table where every slot has been
//! used.
//!
//! Both tables place a new counter within a bounded window from its home, in the slot that
//! suits it best, not in the first free one; and once a table has taken more keys than it
//! holds, no never-used slot is left to stop a probe. A lookup for a key that is not there
//! would then read its whole window, and an insert, which must learn that the key is
//! absent, would read it twice. So each table keeps, per slot, the distance of its counter
//! from that counter's home, and per home the farthest of its counters: a lookup reads no
//! further. An insert, under its home's insert lock, recomputes the farthest from the
//! slots it reads, so the bound falls again once a home's far counters have given their
//! slots to others. A bit per slot, set once it is used, tells an insert whether its
//! window holds a never-used slot further on, which it takes before it evicts.
//!
//! Every counter of a home is written by an insert holding that home's lock, and a slot's
//! distance is written only by the insert that took the slot, before its lock is released:
//! an insert reads the distances of its home's counters as they are. A distance read while
//! another home's insert takes that slot may be the old or the new one; the old one counts
//! a counter that is going, which only makes the bound longer than needed. A lookup that
//! reads the bound before a racing insert of its key raised it misses the key as if it
//! came first, and an insert then finds the key under the lock.

use super::sync::{AtomicU8, AtomicU64, Ordering, Slots};

/// Slots covered by one word of used bits.
const BITS: usize = 64;

/// How many slots from its home a lookup reads before it reads the home's span: a key's
/// counter is most often among them, and the span is another cache line.
/// Under loom, whose windows are four slots, one: its models then read the span too.
pub(super) const NEAR: usize = if cfg!(loom) { 1 } else { 4 };

/// Per-slot distances, per-home bounds and used bits of one table.
pub(super) struct Reach {
    /// The distance of each slot's counter from its home (meaningful while it holds one).
    dist: Slots<AtomicU8>,
    /// Per home, the distance of its farthest counter.
    far: Slots<AtomicU8>,
    /// One bit per slot, set once a counter took it.
    used: Slots<AtomicU64>,
    /// The slots of a window.
    window: usize,
}

// SAFETY: an atomic integer.
#[cfg(not(loom))]
#[allow(unsafe_code)]
unsafe impl super::huge::Zeroable for AtomicU8 {}

// SAFETY: an atomic integer.
#[cfg(not(loom))]
#[allow(unsafe_code)]
unsafe impl super::huge::Zeroable for AtomicU64 {}

impl Reach {
    /// The bounds of a table of `len` slots, `homes` of them homes, and windows of `window`
    /// slots (at most 256, so a distance fits a byte).
    pub fn new(homes: usize, len: usize, window: usize) -> Self {
        debug_assert!(window <= usize::from(u8::MAX).saturating_add(1));
        Reach {
            dist: Slots::zeroed(len, || AtomicU8::new(0)),
            far: Slots::zeroed(homes, || AtomicU8::new(0)),
            used: Slots::zeroed(len.div_ceil(BITS), || AtomicU64::new(0)),
            window,
        }
    }

    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.dist)
            .saturating_add(std::mem::size_of_val(&*self.far))
            .saturating_add(std::mem::size_of_val(&*self.used))
    }

    /// Whether a lookup `pos` slots past `home` has gone past every counter of that home;
    /// `span` keeps the home's span once read.
    #[inline]
    pub fn past(&self, home: usize, pos: usize, span: &mut Option<usize>) -> bool {
        pos >= NEAR && pos >= *span.get_or_insert_with(|| self.span(home))
    }

    /// How many slots from `home` on can hold a counter of that home.
    #[inline]
    pub fn span(&self, home: usize) -> usize {
        self.far.get(home).map_or(self.window, |f| {
            usize::from(f.load(Ordering::Acquire))
                .saturating_add(1)
                .min(self.window)
        })
    }

    /// Whether slot `index`, `pos` slots past a home, holds a counter of that home (when
    /// it holds one at all).
    #[inline]
    pub fn holds_home_of(&self, index: usize, pos: usize) -> bool {
        self.dist
            .get(index)
            .is_some_and(|d| usize::from(d.load(Ordering::Relaxed)) == pos)
    }

    /// Records that a counter of `home` took slot `index`, `pos` slots past it, and that
    /// the farthest counter of `home` is now `far` slots past it.
    pub fn took(&self, home: usize, index: usize, pos: usize, far: usize) {
        let byte = |n: usize| u8::try_from(n).unwrap_or(u8::MAX);
        if let Some(d) = self.dist.get(index) {
            d.store(byte(pos), Ordering::Relaxed);
        }
        if let Some(word) = self.used.get(index / BITS) {
            word.fetch_or(bit(index % BITS), Ordering::Release);
        }
        if let Some(f) = self.far.get(home) {
            f.store(byte(far), Ordering::Release);
        }
    }

    /// Whether every slot of `home`'s window from `pos` slots past it on has been used.
    pub fn used_from(&self, home: usize, pos: usize) -> bool {
        let mut start = home.saturating_add(pos);
        let end = home.saturating_add(self.window);
        while start < end {
            let word = start / BITS;
            let lo = start % BITS;
            let hi = end.saturating_sub(word.saturating_mul(BITS)).min(BITS);
            let mask = bits(lo, hi);
            let seen = self.used.get(word).map_or(0, |w| w.load(Ordering::Acquire));
            if seen & mask != mask {
                return false;
            }
            start = word.saturating_add(1).saturating_mul(BITS);
        }
        true
    }
}

/// The word with bit `i` set.
fn bit(i: usize) -> u64 {
    1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// The word with bits `lo..hi` set (`lo < hi <= 64`).
fn bits(lo: usize, hi: usize) -> u64 {
    let width = u32::try_from(hi.saturating_sub(lo)).unwrap_or(0);
    let ones = u64::MAX
        .checked_shr(64u32.saturating_sub(width))
        .unwrap_or(0);
    ones.checked_shl(u32::try_from(lo).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn masks_cover_their_bits() {
        assert_eq!(bits(0, 64), u64::MAX);
        assert_eq!(bits(0, 1), 1);
        assert_eq!(bits(63, 64), 1 << 63);
        assert_eq!(bits(4, 8), 0xf0);
        assert_eq!(bit(5), 32);
    }

    #[test]
    fn a_window_is_used_once_every_slot_from_the_position_on_was_taken() {
        let reach = Reach::new(200, 456, 256);
        assert!(!reach.used_from(100, 0));
        for index in 110..356 {
            reach.took(100, index, index - 100, 0);
        }
        assert!(!reach.used_from(100, 0), "slots 100..110 were never used");
        assert!(reach.used_from(100, 10));
        assert!(reach.used_from(100, 255));
        assert!(!reach.used_from(101, 10), "slot 356 was never used");
    }

    #[test]
    fn the_span_follows_the_farthest_counter_and_starts_at_one_slot() {
        let reach = Reach::new(10, 266, 256);
        assert_eq!(reach.span(3), 1);
        reach.took(3, 40, 37, 37);
        assert_eq!(reach.span(3), 38);
        assert!(reach.holds_home_of(40, 37));
        assert!(!reach.holds_home_of(40, 36));
        reach.took(3, 4, 1, 1);
        assert_eq!(reach.span(3), 2, "the farthest counter gave its slot away");
        assert_eq!(reach.span(99), 256, "no such home: the whole window");
    }
}
