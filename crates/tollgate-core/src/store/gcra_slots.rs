//! GCRA counters in 16 bytes, each updated by one 8-byte compare-and-swap.
//!
//! GCRA's whole state is one instant, the TAT, and a TAT in the past reads exactly like a
//! fresh counter. So a slot needs neither an expiry nor a lock: it holds the key's digest
//! and the TAT, a check reads them, and an admission swaps in the new TAT with one
//! compare-and-swap on the TAT word alone (a 16-byte swap costs about three times as much).
//!
//! The swap can stand for the whole slot because a slot's TAT never repeats a value once
//! its digest has changed: every write moves it forward (an admission adds a cost, a new
//! key or a reset makes it at least one more than before), and a digest changes only
//! between two such writes, with the TAT marked [`HELD`] meanwhile. A check reads the
//! digest, the TAT, then the digest again; if its swap finds the TAT it read, the slot
//! still belongs to its key. A reset hands the slot to no key ([`GONE`]) rather than
//! winding the TAT back, and the key starts afresh in a new slot.
//!
//! When a key's window holds no never-used or idle slot, a new key takes the slot of a
//! live counter: of those made by one check and far from their limit, the one that reads
//! fresh soonest; only when there are none, the same among counters in use ([`KEPT`]:
//! checked again after they were made, or left near their limit). The mark stays while
//! the slot is its key's, and an idle slot that carries it goes after the cold live
//! counters, so a key in use keeps its slot from one period to the next. A flood of
//! one-time keys so evicts its own counters, never those of keys in use. As a TAT never moves back
//! (see above), a new key taking a slot whose TAT is later than its own starts from the
//! old TAT: it is charged for what remained of the evicted counter. The least TAT of the
//! window is the victim, so this happens only when no counter of the window reads fresh
//! before the new one would.
//!
//! Four slots share a cache line and a probe starts at the key's home slot, so a check
//! usually touches one line and writes it once; two cores only contend for a line when
//! they work on counters that live in it. A decision with several checks holds its slots
//! by setting the TAT's top bit; single checks that meet a held slot wait for it, which
//! keeps such decisions atomic without a lock on the single-check path.

use super::StoreError;
use super::reach::Reach;
use super::sync::{self, AtomicU64, Mutex, Ordering, Slots};
use super::tally::{Reclaim, Tally};
use crate::algorithm::{Gcra, wide_mul};
use crate::outcome::Outcome;
use crate::time::{NANOS_PER_SEC, Nanos};

/// Set in a slot's TAT while a decision holds it or its digest is changing.
pub(super) const HELD: u64 = 1 << 63;

/// Set in a slot's TAT once its counter is in use: checked again after it was made, or
/// left with at most half its allowance. Eviction takes such counters last.
pub(super) const KEPT: u64 = 1 << 62;

/// The TAT itself, below the two marks ([`Gcra::next_tat`] keeps it there).
pub(super) const TAT: u64 = KEPT - 1;

/// The digest of a slot that was never used; a probe stops at it.
const EMPTY: u64 = 0;

/// The digest of a slot whose counter was reset: no key finds it, and it goes to a new
/// key once idle.
const GONE: u64 = 1;

/// How far from its home slot a counter may live (4 KiB of slots; four under loom, whose
/// models stay small; at most 256, see `Reach`). A lookup reads no further than its
/// home's farthest counter (see `Reach`); when the window holds no room, a new key evicts
/// within it.
const MAX_PROBE: usize = if cfg!(loom) { 4 } else { 256 };

/// How many cold live counters a new key compares to choose the one to evict: past its
/// home's farthest counter the scan stops once it has weighed these and no never-used
/// slot is left further on, so a flood's insert costs about what one on a table with room
/// does.
const EXAMINE: usize = if cfg!(loom) { 2 } else { 8 };

/// How long a counter stays idle before its slot goes to a new key ahead of other slots.
const REUSE_AFTER: Nanos = NANOS_PER_SEC;

/// Locks that serialise the insertion of keys sharing a home region, so one key never gets
/// two slots.
const INSERT_STRIPES: usize = if cfg!(loom) { 2 } else { 1024 };

/// Waits for a held slot: spins briefly, then yields the thread.
pub(super) fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < 64 {
        sync::spin();
    } else {
        sync::yield_now();
    }
}

/// Where a GCRA counter lives: its home slot and the digest its slot holds (never
/// [`EMPTY`] or [`GONE`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Place {
    pub home: usize,
    pub key: u64,
}

/// What [`GcraSlots::claim`] found or made: the slot of the counter.
#[derive(Debug, Clone, Copy)]
pub(super) enum Claim {
    /// The counter exists and was left as it was.
    Existing(usize),
    /// The counter was made with the given TAT.
    New(usize),
}

impl Claim {
    pub fn index(self) -> usize {
        match self {
            Claim::Existing(i) | Claim::New(i) => i,
        }
    }
}

/// The mark to store in a TAT word.
#[inline]
pub(super) fn kept_bit(kept: bool) -> u64 {
    if kept { KEPT } else { 0 }
}

/// Whether an admission or denial leaves a counter in use, so that eviction keeps it:
/// `again` when the counter existed before the check.
#[inline]
pub(super) fn in_use(again: bool, outcome: &Outcome) -> bool {
    again || !outcome.allowed || outcome.remaining.saturating_mul(2) <= outcome.limit
}

/// One counter: 16 bytes, aligned so that four share a cache line and none straddles two.
#[repr(C, align(16))]
struct Slot {
    key: AtomicU64,
    tat: AtomicU64,
}

// SAFETY: two atomic integers; all zeros is an empty slot.
#[cfg(not(loom))]
#[allow(unsafe_code)]
unsafe impl super::huge::Zeroable for Slot {}

impl Slot {
    /// The slot's digest and TAT, read so that the TAT was the digest's when it was read
    /// (unless a later swap finds it changed, which the caller's swap then reports).
    #[inline]
    fn read(&self) -> (u64, Nanos) {
        loop {
            let key = self.key.load(Ordering::Acquire);
            let tat = self.tat.load(Ordering::Acquire);
            if self.key.load(Ordering::Acquire) == key {
                return (key, tat);
            }
        }
    }

    /// Swaps the TAT from `old` to `new`; false when it is no longer `old`.
    #[inline]
    fn swap(&self, old: Nanos, new: Nanos) -> bool {
        self.tat
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives the slot, whose TAT word was `old` with no hold, to digest `key` with a TAT
    /// of at least `tat` and the mark `kept`, moving the TAT forward so no earlier reader's
    /// swap can succeed.
    fn rekey(&self, old: Nanos, key: u64, tat: Nanos, kept: bool) -> bool {
        if !self.swap(old, old | HELD) {
            return false;
        }
        self.key.store(key, Ordering::Release);
        let tat = (tat & TAT).max((old & TAT).saturating_add(1)).min(TAT);
        self.tat.store(tat | kept_bit(kept), Ordering::Release);
        true
    }
}

/// The table of GCRA counters, made when first used.
pub(super) struct GcraSlots {
    slots: Slots<Slot>,
    homes: usize,
    stripes: Box<[Mutex<()>]>,
    reach: Reach,
    tally: Tally,
}

impl GcraSlots {
    /// Slots for `capacity` live counters at 7/8 load.
    pub fn new(capacity: usize) -> Self {
        let homes = capacity.saturating_mul(8).div_ceil(7).max(MAX_PROBE);
        let len = homes.saturating_add(MAX_PROBE);
        GcraSlots {
            slots: Slots::zeroed(len, || Slot {
                key: AtomicU64::new(EMPTY),
                tat: AtomicU64::new(0),
            }),
            homes,
            stripes: (0..INSERT_STRIPES).map(|_| Mutex::new(())).collect(),
            reach: Reach::new(homes, len, MAX_PROBE),
            tally: Tally::new(),
        }
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether slot `index` holds a counter live at `now`, or `None` when it holds none.
    pub fn live_at(&self, index: usize, now: Nanos) -> Option<bool> {
        let (key, tat) = self.slots.get(index)?.read();
        (key > GONE).then(|| is_live(tat, now))
    }

    /// The place of the counter with digest (`k0`, `check`): the home from `k0`'s high
    /// bits, and a slot digest made of `k0`'s low bits and `check`.
    #[inline]
    pub fn place(&self, k0: u64, check: u32) -> Place {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "k0 < 2^64, so k0 * homes / 2^64 is below homes, a usize"
        )]
        let home = (wide_mul(k0, self.homes as u64) >> 64) as usize;
        let key = (u64::from(check) << 32 | (k0 & 0xffff_ffff)).max(GONE + 1);
        Place { home, key }
    }

    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
            .saturating_add(std::mem::size_of_val(&*self.stripes))
            .saturating_add(self.reach.bytes())
            .saturating_add(self.tally.bytes())
    }

    /// The TAT words (marks included) of the slots holding a counter.
    pub fn used(&self) -> impl Iterator<Item = Nanos> + '_ {
        self.slots
            .iter()
            .map(Slot::read)
            .filter(|&(key, _)| key > GONE)
            .map(|(_, tat)| tat)
    }

    /// The probe window of `home`: slots `home..home + MAX_PROBE`, with their indices.
    #[inline]
    fn window(&self, home: usize) -> impl Iterator<Item = (usize, &Slot)> {
        let end = home.saturating_add(MAX_PROBE);
        // A home is below `homes` (see `place`), so its window lies within the
        // `homes + MAX_PROBE` slots.
        let slots = self.slots.get(home..end).unwrap_or_default();
        (home..end).zip(slots)
    }

    /// The slot holding `place`'s counter, and its TAT, if the counter exists.
    #[inline]
    pub fn find(&self, place: Place) -> Option<(usize, Nanos)> {
        self.find_slot(place).map(|(index, _, tat)| (index, tat))
    }

    /// [`find`](Self::find), with the slot itself.
    #[inline]
    fn find_slot(&self, place: Place) -> Option<(usize, &Slot, Nanos)> {
        'probe: loop {
            let mut span = None;
            for (pos, (index, slot)) in self.window(place.home).enumerate() {
                if self.reach.past(place.home, pos, &mut span) {
                    return None;
                }
                match slot.key.load(Ordering::Acquire) {
                    EMPTY => return None,
                    k if k == place.key => {
                        let tat = slot.tat.load(Ordering::Acquire);
                        if slot.key.load(Ordering::Acquire) != place.key {
                            // The slot changed hands while we looked; so may have others.
                            continue 'probe;
                        }
                        return Some((index, slot, tat));
                    }
                    _ => {}
                }
            }
            return None;
        }
    }

    /// One check, applied at once when admitted.
    #[inline]
    pub fn acquire(
        &self,
        gcra: &Gcra,
        place: Place,
        now: Nanos,
        cost: u64,
    ) -> Result<Outcome, StoreError> {
        let mut spins = 0;
        loop {
            let Some((_, slot, word)) = self.find_slot(place) else {
                let outcome = gcra.check_tat(0, now, cost);
                if !outcome.allowed || cost == 0 {
                    return Ok(outcome);
                }
                let kept = in_use(false, &outcome);
                match self.claim(place, now, gcra.next_tat(0, now, cost), kept)? {
                    Claim::New(..) => return Ok(outcome),
                    // The counter appeared meanwhile: check it like any other.
                    Claim::Existing(_) => continue,
                }
            };
            if word & HELD != 0 {
                backoff(&mut spins);
                continue;
            }
            let outcome = gcra.check_tat(word & TAT, now, cost);
            if cost == 0 {
                return Ok(outcome);
            }
            if !outcome.allowed {
                // A denied key is at its limit: mark it, once, so eviction keeps it. A
                // failed swap means another check wrote the word, and marked it too.
                if word & KEPT == 0 {
                    slot.swap(word, word | KEPT);
                }
                return Ok(outcome);
            }
            if slot.swap(word, gcra.next_tat(word & TAT, now, cost) | KEPT) {
                return Ok(outcome);
            }
        }
    }

    /// Makes room for a new counter holding `tat` and marked `kept`: the first slot of its
    /// window idle for a while or never used, else one only just idle, else the live
    /// counter of least TAT among the first [`EXAMINE`] cold ones, else an idle one marked
    /// in use, else the live counter in use of least TAT. Leaves the
    /// counter untouched when it exists by the time the insert lock is taken. Fails only
    /// when every slot of the window is held by a decision in progress.
    pub fn claim(
        &self,
        place: Place,
        now: Nanos,
        tat: Nanos,
        kept: bool,
    ) -> Result<Claim, StoreError> {
        #[allow(
            clippy::indexing_slicing,
            reason = "there are INSERT_STRIPES stripes, so home % INSERT_STRIPES is one of them"
        )]
        let _insert = self.stripes[place.home % INSERT_STRIPES].lock();
        let mut spins = 0;
        loop {
            // One pass looks for the key and for room. Only inserts of this key create it,
            // and they wait for the lock we hold; it cannot live past a never-used slot.
            // A slot idle for a while goes first; one only just idle is taken only when the
            // window has nothing else, so busy keys are not pushed out of their slots and
            // made to find room again on every check.
            //
            // Past the key's span (see `Reach`) the pass goes on only for room: it stops
            // at a slot idle for a while, or once it weighs enough cold counters and no
            // never-used slot is left further on.
            let span = self.reach.span(place.home);
            let mut far = 0;
            let mut no_empty_ahead = None;
            let mut pick = None;
            let mut just_idle = None;
            let mut cold: Option<(usize, &Slot, Nanos)> = None;
            let mut cold_seen = 0usize;
            let mut idle_kept = None;
            let mut warm: Option<(usize, &Slot, Nanos)> = None;
            for (pos, (index, slot)) in self.window(place.home).enumerate() {
                if pos >= span
                    && (pick.is_some()
                        || cold_seen >= EXAMINE
                            && *no_empty_ahead
                                .get_or_insert_with(|| self.reach.used_from(place.home, pos)))
                {
                    break;
                }
                let (key, old) = slot.read();
                if key == place.key {
                    return Ok(Claim::Existing(index));
                }
                if key == EMPTY {
                    pick = pick.or(Some((index, slot, old, Reclaim::Empty)));
                    break;
                }
                if key > GONE && pos < span && self.reach.holds_home_of(index, pos) {
                    far = pos;
                }
                if old & HELD != 0 || pick.is_some() {
                    continue;
                }
                let t = old & TAT;
                if t > now {
                    // A reset slot holds no counter, but no new key may take it before its
                    // TAT has passed: it would start from that TAT.
                    if key == GONE || cold_seen >= EXAMINE {
                        continue;
                    }
                    if old & KEPT == 0 {
                        cold = least(cold, (index, slot, old));
                        cold_seen = cold_seen.saturating_add(1);
                    } else if cold.is_none() {
                        warm = least(warm, (index, slot, old));
                    }
                    continue;
                }
                let what = if key == GONE {
                    Reclaim::Empty
                } else {
                    Reclaim::Expired
                };
                if old & KEPT != 0 {
                    // The idle counter of a key in use: it goes after the cold live ones,
                    // so that the key, back for its next period, finds its slot and mark.
                    idle_kept = idle_kept.or(Some((index, slot, old, what)));
                } else if t.saturating_add(REUSE_AFTER) <= now {
                    pick = Some((index, slot, old, what));
                } else {
                    just_idle = just_idle.or(Some((index, slot, old, what)));
                }
            }
            let Some((index, slot, old, what)) = pick
                .or(just_idle)
                .or_else(|| cold.map(|(i, s, old)| (i, s, old, Reclaim::Cold)))
                .or(idle_kept)
                .or_else(|| warm.map(|(i, s, old)| (i, s, old, Reclaim::InUse)))
            else {
                return Err(StoreError::Full {
                    capacity: (self.homes / 8).saturating_mul(7),
                });
            };
            // Another key's insert may be writing a never-used slot, and another key's
            // insert or check may take the slot first; then look again.
            if old & HELD != 0 {
                backoff(&mut spins);
            } else if slot.rekey(old, place.key, tat, kept) {
                let pos = index.saturating_sub(place.home);
                self.reach.took(place.home, index, pos, far.max(pos));
                self.tally.made(place.home, what);
                return Ok(Claim::New(index));
            }
        }
    }

    /// Holds slot `index` for a multi-check decision if it still holds `key`; answers its
    /// TAT word (marks included) before holding, or `None` when another key has taken the
    /// slot.
    pub fn hold(&self, index: usize, key: u64) -> Option<Nanos> {
        let slot = self.slots.get(index)?;
        let mut spins = 0;
        loop {
            let (k, tat) = slot.read();
            if k != key {
                return None;
            }
            if tat & HELD != 0 {
                backoff(&mut spins);
                continue;
            }
            if slot.swap(tat, tat | HELD) {
                return Some(tat);
            }
        }
    }

    /// Ends a hold, leaving TAT word `tat` in the slot (never earlier than the TAT it held,
    /// and with its mark).
    pub fn unhold(&self, index: usize, tat: Nanos) {
        // `index` is that of a slot `hold` held, so the slot exists.
        if let Some(slot) = self.slots.get(index) {
            slot.tat.store(tat & !HELD, Ordering::Release);
        }
    }

    /// Forgets the counter at `place`: its slot goes to no key, and the key's next check
    /// starts a fresh counter.
    pub fn reset(&self, place: Place) {
        let mut spins = 0;
        while let Some((_, slot, tat)) = self.find_slot(place) {
            if tat & HELD != 0 {
                backoff(&mut spins);
                continue;
            }
            if slot.rekey(tat, GONE, tat, false) {
                self.tally.forgot(place.home);
                return;
            }
        }
    }
}

/// Of `best` and `candidate`, each a slot's index, the slot and its TAT word, the one of
/// least TAT (`best` on a tie).
fn least<'s>(
    best: Option<(usize, &'s Slot, Nanos)>,
    candidate: (usize, &'s Slot, Nanos),
) -> Option<(usize, &'s Slot, Nanos)> {
    match best {
        Some((_, _, b)) if b & TAT <= candidate.2 & TAT => best,
        _ => Some(candidate),
    }
}

/// Whether a used slot's counter, with TAT word `tat`, is live at `now`.
pub(super) fn is_live(tat: Nanos, now: Nanos) -> bool {
    tat & HELD != 0 || tat & TAT > now
}

#[cfg(all(test, not(loom)))]
mod tests {
    #![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
    use super::*;
    use crate::time::NANOS_PER_SEC as S;

    const T0: Nanos = 1_767_571_200 * S;

    /// One request per second, no burst: a counter is live for a second after a check.
    fn one_per_second() -> Gcra {
        Gcra::new(1, S, 0)
    }

    fn at(key: u64) -> Place {
        Place { home: 0, key }
    }

    #[test]
    fn a_slot_is_16_bytes_and_four_share_a_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 16);
        assert_eq!(std::mem::align_of::<Slot>(), 16);
    }

    #[test]
    fn keys_sharing_a_home_keep_their_own_counters() {
        let (t, g) = (GcraSlots::new(16), one_per_second());
        assert!(t.acquire(&g, at(7), T0, 1).unwrap().allowed);
        assert!(!t.acquire(&g, at(7), T0, 1).unwrap().allowed);
        assert!(t.acquire(&g, at(9), T0, 1).unwrap().allowed);
        t.reset(at(7));
        assert!(t.acquire(&g, at(7), T0, 1).unwrap().allowed);
    }

    #[test]
    fn a_full_window_evicts_its_coldest_counter_and_keeps_those_in_use() {
        // Ten a second: one check leaves nine, and the counter reads fresh 100 ms later.
        let (t, g) = (GcraSlots::new(16), Gcra::new(10, S, 0));
        let at_us = |us: u64| T0 + us * 1_000;
        for key in 2..=MAX_PROBE as u64 + 1 {
            assert!(t.acquire(&g, at(key), at_us(key), 1).unwrap().allowed);
        }
        // Key 2, the oldest, is checked again: in use.
        assert!(t.acquire(&g, at(2), at_us(2_000), 1).unwrap().allowed);
        assert_eq!(t.tally().resident(), MAX_PROBE);
        // A new key evicts the cold counter that reads fresh soonest, key 3's...
        assert!(t.acquire(&g, at(5_000), at_us(3_000), 1).unwrap().allowed);
        assert!(t.find(at(3)).is_none());
        assert!(t.find(at(2)).is_some());
        // ...and starts fresh: nine left after its first check, eight after its second.
        assert_eq!(
            t.acquire(&g, at(5_000), at_us(3_000), 1).unwrap().remaining,
            8
        );
        let evictions = t.tally().evictions();
        assert_eq!((evictions.cold, evictions.in_use), (1, 0));
        // A denial, or a peek, needs no slot; a key that lost its slot starts fresh.
        assert!(t.acquire(&g, at(6_000), at_us(3_000), 0).unwrap().allowed);
        assert_eq!(t.acquire(&g, at(3), at_us(3_000), 1).unwrap().remaining, 9);
        // Idle counters read as fresh, and their slots go first, counted as expired.
        assert!(t.acquire(&g, at(7_000), T0 + S, 1).unwrap().allowed);
        assert_eq!(t.tally().evictions().expired, 1);
        assert_eq!(t.tally().resident(), MAX_PROBE);
    }

    #[test]
    fn a_lookup_stops_past_the_farthest_counter_of_its_home_and_the_bound_falls_again() {
        // Ten a second: one check leaves a cold counter.
        let (t, g) = (GcraSlots::new(16), Gcra::new(10, S, 0));
        let from = |home: usize, key: u64| Place { home, key };
        // Twelve keys of home 0 fill slots 0..12, and slots from 20 on are used.
        for key in 2..14 {
            assert!(t.acquire(&g, at(key), T0, 1).unwrap().allowed);
        }
        for key in 1_000..1_000 + MAX_PROBE as u64 {
            assert!(t.acquire(&g, from(20, key), T0, 1).unwrap().allowed);
        }
        assert_eq!(t.reach.span(0), 12);
        // Long idle, slots 6..12 go to six keys of home 6.
        let later = T0 + 10 * S;
        for key in 100..106 {
            assert!(t.acquire(&g, from(6, key), later, 1).unwrap().allowed);
        }
        assert_eq!(t.find(from(6, 105)).map(|f| f.0), Some(11));
        assert!(t.find(at(13)).is_none(), "its slot went to home 6");
        // Home 0's next insert finds its counters within slots 0..6, and says so.
        assert!(t.acquire(&g, at(50), later, 1).unwrap().allowed);
        assert_eq!(t.find(at(50)).map(|f| f.0), Some(0));
        assert_eq!(t.reach.span(0), 6);
        for key in 3..8 {
            assert_eq!(t.find(at(key)).map(|f| f.0), Some(key as usize - 2));
        }
        assert!(t.find(at(2)).is_none());
    }

    #[test]
    fn a_key_at_its_limit_is_marked_in_use_by_a_denial_or_a_check_that_empties_it() {
        let (t, g) = (GcraSlots::new(16), Gcra::new(10, S, 0));
        assert!(t.acquire(&g, at(7), T0, 1).unwrap().allowed);
        assert_eq!(t.find(at(7)).map(|f| f.1 & KEPT), Some(0));
        // Ten at once: half the allowance gone or more marks it.
        assert!(t.acquire(&g, at(8), T0, 6).unwrap().allowed);
        assert_ne!(t.find(at(8)).map(|f| f.1 & KEPT), Some(0));
        // A key whose one check was denied has no counter; a denied key with one is
        // marked.
        assert!(t.acquire(&g, at(9), T0, 4).unwrap().allowed);
        assert!(!t.acquire(&g, at(9), T0, 7).unwrap().allowed);
        assert_ne!(t.find(at(9)).map(|f| f.1 & KEPT), Some(0));
        // The mark is not part of the TAT.
        assert_eq!(t.find(at(9)).map(|f| f.1 & TAT), Some(T0 + 4 * S / 10));
    }

    #[test]
    fn new_keys_take_never_used_slots_before_just_idle_ones() {
        // Three a second: one check leaves a cold counter, idle a third of a second later.
        let (t, g) = (GcraSlots::new(16), Gcra::new(3, S, 0));
        assert!(t.acquire(&g, at(11), T0, 1).unwrap().allowed);
        // Key 11 is idle but only just: key 12 goes to the empty slot after it.
        let later = T0 + S / 2;
        assert!(t.acquire(&g, at(12), later, 1).unwrap().allowed);
        assert_eq!(t.find(at(11)).map(|f| f.0), Some(0));
        assert_eq!(t.find(at(12)).map(|f| f.0), Some(1));
        // Idle for longer than REUSE_AFTER, key 11's slot goes first.
        let much_later = later + 2 * S;
        assert!(t.acquire(&g, at(13), much_later, 1).unwrap().allowed);
        assert_eq!(t.find(at(13)).map(|f| f.0), Some(0));
    }

    #[test]
    fn a_single_check_waits_for_a_held_slot_and_sees_what_the_holder_wrote() {
        let (t, g) = (GcraSlots::new(16), Gcra::new(10, S, 0));
        assert!(t.acquire(&g, at(7), T0, 1).unwrap().allowed);
        let (index, _) = t.find(at(7)).unwrap();
        let held = t.hold(index, 7).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| t.acquire(&g, at(7), T0, 1).unwrap());
            // The holder takes 8 more of the 10; the waiter gets the last one.
            t.unhold(index, g.next_tat(held, T0, 8));
            let o = waiter.join().unwrap();
            assert!(o.allowed);
            assert_eq!(o.remaining, 0);
        });
        assert!(!t.acquire(&g, at(7), T0, 1).unwrap().allowed);
    }

    #[test]
    fn a_swap_read_before_the_slot_changed_hands_fails() {
        // Three a second: one check leaves the counter cold, so its slot goes when idle.
        let (t, g) = (GcraSlots::new(16), Gcra::new(3, S, 0));
        assert!(t.acquire(&g, at(7), T0, 1).unwrap().allowed);
        let (index, stale) = t.find(at(7)).unwrap();
        // Key 7 goes idle and a new key takes its slot with a TAT and a mark that, without
        // the rule that a new key moves the TAT forward, would equal the word read above.
        let later = (stale & TAT) + 2 * S;
        let claim = t.claim(at(8), later, stale & TAT, stale & KEPT != 0);
        assert!(matches!(claim, Ok(Claim::New(i)) if i == index));
        assert!(!t.slots[index].swap(stale, stale + S));
        assert_eq!(t.find(at(8)).map(|f| f.1), Some(stale + 1));
        assert!(t.find(at(7)).is_none());
    }

    #[test]
    fn a_reset_starts_the_key_afresh_and_defeats_earlier_readers() {
        let (t, g) = (GcraSlots::new(16), one_per_second());
        assert!(t.acquire(&g, at(7), T0, 1).unwrap().allowed);
        let (index, stale) = t.find(at(7)).unwrap();
        t.reset(at(7));
        assert!(!t.slots[index].swap(stale, stale + S));
        assert!(t.find(at(7)).is_none());
        assert!(t.acquire(&g, at(7), T0, 1).unwrap().allowed);
        assert_ne!(t.find(at(7)).map(|f| f.0), Some(index));
        // The reset slot counts as no counter, and goes to a new key once idle.
        assert_eq!(t.used().count(), 1);
        assert!(
            matches!(t.claim(at(9), T0 + 3 * S, T0 + 4 * S, false), Ok(Claim::New(i)) if i == index)
        );
    }

    #[test]
    fn racing_keys_on_changing_slots_never_charge_each_other() {
        // Every key shares one probe window. Each second brings 64 new keys, which eight
        // threads check 2,048 times between them; by the 17th second the window is full,
        // so new keys take the slots of idle ones while other threads are checking. One
        // request per second each: every key must admit exactly once, whichever slot
        // it lived in and whoever took that slot next.
        const THREADS: u64 = 8;
        const SECONDS: u64 = 40;
        const KEYS_PER_SECOND: u64 = 64;
        let t = GcraSlots::new(16);
        let g = one_per_second();
        let admitted: Vec<AtomicU64> = (0..SECONDS * KEYS_PER_SECOND)
            .map(|_| AtomicU64::new(0))
            .collect();
        let tick = std::sync::Barrier::new(THREADS as usize);
        std::thread::scope(|s| {
            for thread in 0..THREADS {
                let (t, g, admitted, tick) = (&t, &g, &admitted, &tick);
                s.spawn(move || {
                    for second in 0..SECONDS {
                        // Threads move through time together, as they would on one clock.
                        tick.wait();
                        let now = T0 + second * S + thread;
                        for step in 0..256 {
                            let key = second * KEYS_PER_SECOND
                                + (step * 7 + thread * 13) % KEYS_PER_SECOND;
                            let o = t.acquire(g, at(key + 2), now, 1).unwrap();
                            if o.allowed {
                                admitted[key as usize].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        for (key, n) in admitted.iter().enumerate() {
            assert_eq!(n.load(Ordering::Relaxed), 1, "key {key}");
        }
        assert!(t.used().count() <= MAX_PROBE);
    }
}

/// The table's protocol under every interleaving and every outcome of the C11 memory model
/// that loom explores (weaker than x86's, as on ARM):
/// `RUSTFLAGS="--cfg loom" cargo test -p tollgate-core --release --lib loom`.
#[cfg(all(test, loom))]
#[allow(clippy::unwrap_used)]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::time::NANOS_PER_SEC as S;

    const T0: Nanos = 1_767_571_200 * S;

    fn at(key: u64) -> Place {
        Place { home: 0, key }
    }

    /// Runs `theirs` on another thread and `mine` on this one, both on table `t` with
    /// limit `g`; answers both results.
    fn race<RA: Send + 'static, RB>(
        t: &Arc<GcraSlots>,
        g: &Gcra,
        theirs: impl FnOnce(&GcraSlots, &Gcra) -> RA + Send + 'static,
        mine: impl FnOnce(&GcraSlots, &Gcra) -> RB,
    ) -> (RA, RB) {
        let (t2, g2) = (t.clone(), g.clone());
        sync::race(move || theirs(&t2, &g2), || mine(t, g))
    }

    /// Whether a check of `cost` at `now` admits.
    fn admits(t: &GcraSlots, g: &Gcra, place: Place, now: Nanos, cost: u64) -> bool {
        t.acquire(g, place, now, cost).unwrap().allowed
    }

    /// How many slots hold the counter of `key`.
    fn copies(t: &GcraSlots, key: u64) -> usize {
        t.slots.iter().filter(|s| s.read().0 == key).count()
    }

    #[test]
    fn the_first_checks_of_a_new_key_admit_once_and_make_one_counter() {
        loom::model(|| {
            let (t, g) = (Arc::new(GcraSlots::new(2)), Gcra::new(1, S, 0));
            let check = |t: &GcraSlots, g: &Gcra| admits(t, g, at(7), T0, 1);
            let (a, b) = race(&t, &g, check, check);
            assert!(a ^ b, "admitted {a} and {b}");
            assert_eq!(copies(&t, 7), 1);
        });
    }

    #[test]
    fn racing_checks_on_a_counter_with_one_left_admit_once() {
        loom::model(|| {
            let (t, g) = (Arc::new(GcraSlots::new(2)), Gcra::new(2, S, 0));
            assert!(admits(&t, &g, at(7), T0, 1));
            let check = |t: &GcraSlots, g: &Gcra| admits(t, g, at(7), T0, 1);
            let (a, b) = race(&t, &g, check, check);
            assert!(a ^ b, "admitted {a} and {b}");
            assert_eq!(
                t.find(at(7)).map(|f| f.1 & TAT),
                Some(g.next_tat(T0, T0, 2))
            );
        });
    }

    #[test]
    fn a_check_racing_a_new_key_for_its_slot_charges_only_itself() {
        loom::model(|| {
            let (t, g) = (Arc::new(GcraSlots::new(2)), Gcra::new(1, S, 0));
            // Four idle counters fill the window; a new key takes the first.
            for key in 2..6 {
                assert!(admits(&t, &g, at(key), T0, 1));
            }
            let later = T0 + 3 * S;
            let (a, b) = race(
                &t,
                &g,
                move |t, g| admits(t, g, at(2), later, 1),
                |t, g| admits(t, g, at(9), later, 1),
            );
            assert!(a && b);
            // Each key's counter holds its own one charge, wherever it lives.
            for key in [2, 9] {
                assert_eq!(copies(&t, key), 1, "key {key}");
                assert_eq!(
                    t.find(at(key)).map(|f| f.1 & TAT),
                    Some(later + S),
                    "key {key}"
                );
            }
        });
    }

    #[test]
    fn a_check_racing_the_eviction_of_its_live_counter_charges_only_itself() {
        loom::model(|| {
            // Three a second: one check leaves a counter cold, and live for a third of a
            // second. Four fill the window; key 2's reads fresh soonest, so a new key
            // evicts it, unless key 2's check comes first and marks it in use.
            let (t, g) = (Arc::new(GcraSlots::new(2)), Gcra::new(3, S, 0));
            for key in 2..6 {
                assert!(admits(&t, &g, at(key), T0 + key, 1));
            }
            let now = T0 + 10;
            let (a, b) = race(
                &t,
                &g,
                move |t, g| admits(t, g, at(2), now, 1),
                |t, g| admits(t, g, at(9), now, 1),
            );
            assert!(a && b);
            let interval = S.div_ceil(3);
            // The new key holds its own one check, never key 2's.
            assert_eq!(copies(&t, 9), 1);
            assert_eq!(t.find(at(9)).map(|f| f.1 & TAT), Some(now + interval));
            // Key 2 holds both its checks, or, evicted before its second, that one alone.
            assert_eq!(copies(&t, 2), 1);
            let tat = t.find(at(2)).map(|f| f.1 & TAT);
            assert!(
                tat == Some(T0 + 2 + 2 * interval) || tat == Some(now + interval),
                "{tat:?}"
            );
        });
    }

    #[test]
    fn new_keys_of_other_stripes_racing_for_one_empty_slot_each_get_their_own() {
        loom::model(|| {
            let (t, g) = (Arc::new(GcraSlots::new(2)), Gcra::new(1, S, 0));
            // Slot 0 taken: slot 1 is the first empty slot of both windows, whose homes
            // (0 and 1) insert under different locks.
            assert!(admits(&t, &g, at(2), T0, 1));
            let other = Place { home: 1, key: 9 };
            let (a, b) = race(
                &t,
                &g,
                |t, g| admits(t, g, at(7), T0, 1),
                |t, g| admits(t, g, other, T0, 1),
            );
            assert!(a && b);
            for place in [at(2), at(7), other] {
                let key = place.key;
                assert_eq!(copies(&t, key), 1, "key {key}");
                assert_eq!(t.find(place).map(|f| f.1 & TAT), Some(T0 + S), "key {key}");
            }
        });
    }

    #[test]
    fn a_held_slot_and_a_single_check_admit_as_if_one_came_first() {
        loom::model(|| {
            let (t, g) = (Arc::new(GcraSlots::new(2)), Gcra::new(10, S, 0));
            assert!(admits(&t, &g, at(7), T0, 1));
            let (index, _) = t.find(at(7)).unwrap();
            // Nine left: a single check of 2, and a decision holding the slot for 8.
            let (a, b) = race(
                &t,
                &g,
                |t, g| admits(t, g, at(7), T0, 2),
                |t, g| {
                    let held = t.hold(index, 7).unwrap();
                    let o = g.check_tat(held, T0, 8);
                    let tat = if o.allowed {
                        g.next_tat(held, T0, 8)
                    } else {
                        held
                    };
                    t.unhold(index, tat);
                    o.allowed
                },
            );
            assert!(a ^ b, "admitted {a} and {b}");
            let used = 1 + if a { 2 } else { 8 };
            assert_eq!(
                t.find(at(7)).map(|f| f.1 & TAT),
                Some(g.next_tat(T0, T0, used))
            );
        });
    }

    #[test]
    fn a_reset_racing_a_check_leaves_one_counter_or_none() {
        loom::model(|| {
            let (t, g) = (Arc::new(GcraSlots::new(2)), Gcra::new(1, S, 0));
            assert!(admits(&t, &g, at(7), T0, 1));
            let (_, admitted) = race(
                &t,
                &g,
                |t, _| t.reset(at(7)),
                |t, g| admits(t, g, at(7), T0, 1),
            );
            // Before the reset the check is denied and the reset leaves nothing; after it,
            // the check starts a fresh counter.
            assert_eq!(copies(&t, 7), usize::from(admitted));
        });
    }
}
