//! GCRA counters in 16 bytes, each updated by one compare-and-swap.
//!
//! GCRA's whole state is one instant, the TAT, and a TAT in the past reads exactly like a
//! fresh counter. So a slot needs neither an expiry nor a lock: its 128 bits are the key's
//! digest and the TAT, a check loads them, and an admission swaps in the new TAT with one
//! 16-byte compare-and-swap. Because the swap compares the digest too, a slot that another
//! key took over in the meantime makes it fail instead of charging the wrong counter.
//!
//! Four slots share a cache line and a probe starts at the key's home slot, so a check
//! usually touches one line and writes it once; two cores only contend for a line when
//! they work on counters that live in it. A decision with several checks holds its slots
//! by setting the TAT's top bit ([`HELD`]); single checks that meet a held slot wait for
//! it, which keeps such decisions atomic without a lock on the single-check path.

use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use portable_atomic::AtomicU128;

use super::StoreError;
use crate::algorithm::Gcra;
use crate::outcome::Outcome;
use crate::time::{NANOS_PER_SEC, Nanos};

/// Set in a slot's TAT while a multi-check decision holds it.
pub(super) const HELD: u64 = 1 << 63;

/// How far from its home slot a counter may live (16 KiB of slots).
const MAX_PROBE: usize = 1024;

/// How long a counter stays idle before its slot goes to a new key ahead of other slots.
const REUSE_AFTER: Nanos = NANOS_PER_SEC;

/// Locks that serialise the insertion of keys sharing a home region, so one key never gets
/// two slots.
const INSERT_STRIPES: usize = 1024;

/// A slot's digest and TAT as one value.
pub(super) fn pack(key: u64, tat: Nanos) -> u128 {
    (u128::from(key) << 64) | u128::from(tat)
}

pub(super) fn key_of(v: u128) -> u64 {
    (v >> 64) as u64
}

pub(super) fn tat_of(v: u128) -> Nanos {
    v as u64
}

/// Waits for a held slot: spins briefly, then yields the thread.
pub(super) fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Where a GCRA counter lives: its home slot and the digest its slot holds (never 0).
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

/// The table of GCRA counters, allocated whole when first used.
pub(super) struct GcraSlots {
    /// Digest (high 64 bits, 0 for a slot never used) and TAT (low 64 bits).
    slots: Box<[AtomicU128]>,
    homes: usize,
    stripes: Box<[Mutex<()>]>,
}

impl GcraSlots {
    /// Slots for `capacity` live counters at 7/8 load.
    pub fn new(capacity: usize) -> Self {
        let homes = capacity.saturating_mul(8).div_ceil(7).max(MAX_PROBE);
        GcraSlots {
            slots: (0..homes + MAX_PROBE).map(|_| AtomicU128::new(0)).collect(),
            homes,
            stripes: (0..INSERT_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The place of the counter with digest (`k0`, `check`): the home from `k0`'s high
    /// bits, and a slot digest made of `k0`'s low bits and `check`.
    #[inline]
    pub fn place(&self, k0: u64, check: u32) -> Place {
        let home = ((u128::from(k0) * self.homes as u128) >> 64) as usize;
        let key = (u64::from(check) << 32 | (k0 & 0xffff_ffff)).max(1);
        Place { home, key }
    }

    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + std::mem::size_of_val(&*self.stripes)
    }

    /// The values of the slots ever used.
    pub fn used(&self) -> impl Iterator<Item = u128> + '_ {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .filter(|&v| key_of(v) != 0)
    }

    #[inline]
    fn window(&self, home: usize) -> impl Iterator<Item = (usize, &AtomicU128)> {
        self.slots[home..home + MAX_PROBE]
            .iter()
            .enumerate()
            .map(move |(offset, s)| (home + offset, s))
    }

    /// The slot holding `place`'s counter, and its value, if the counter exists.
    #[inline]
    pub fn find(&self, place: Place) -> Option<(usize, u128)> {
        for (index, slot) in self.window(place.home) {
            let v = slot.load(Ordering::Acquire);
            match key_of(v) {
                0 => return None,
                k if k == place.key => return Some((index, v)),
                _ => {}
            }
        }
        None
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
            let Some((index, v)) = self.find(place) else {
                let outcome = gcra.check_tat(0, now, cost);
                if !outcome.allowed || cost == 0 {
                    return Ok(outcome);
                }
                match self.claim(place, now, gcra.next_tat(0, now, cost))? {
                    Claim::New(_) => return Ok(outcome),
                    // The counter appeared meanwhile: check it like any other.
                    Claim::Existing(_) => continue,
                }
            };
            let tat = tat_of(v);
            if tat & HELD != 0 {
                backoff(&mut spins);
                continue;
            }
            let outcome = gcra.check_tat(tat, now, cost);
            if !outcome.allowed || cost == 0 {
                return Ok(outcome);
            }
            let next = pack(place.key, gcra.next_tat(tat, now, cost));
            if self.slots[index]
                .compare_exchange(v, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(outcome);
            }
        }
    }

    /// Makes room for a new counter holding `tat`: the first slot of its window never used
    /// or idle at `now`. Leaves the counter untouched when it exists by the time the insert
    /// lock is taken.
    pub fn claim(&self, place: Place, now: Nanos, tat: Nanos) -> Result<Claim, StoreError> {
        let _insert = self.stripes[place.home % INSERT_STRIPES].lock();
        loop {
            // One pass looks for the key and for room. Only inserts of this key create it,
            // and they wait for the lock we hold; it cannot live past a never-used slot.
            // A slot idle for a while goes first; one only just idle is taken only when the
            // window has nothing else, so busy keys are not pushed out of their slots and
            // made to find room again on every check.
            let mut just_idle = None;
            let mut pick = None;
            for (index, slot) in self.window(place.home) {
                let v = slot.load(Ordering::Acquire);
                let (key, old) = (key_of(v), tat_of(v));
                if key == place.key {
                    return Ok(Claim::Existing(index));
                }
                if key == 0 {
                    pick = pick.or(Some((index, v)));
                    break;
                }
                if old & HELD != 0 || pick.is_some() {
                    continue;
                }
                if old.saturating_add(REUSE_AFTER) <= now {
                    pick = Some((index, v));
                } else if just_idle.is_none() && old <= now {
                    just_idle = Some((index, v));
                }
            }
            let Some((index, v)) = pick.or(just_idle) else {
                return Err(StoreError::Full {
                    capacity: self.homes / 8 * 7,
                });
            };
            // Another key's insert or check may take the slot first; then look again.
            if self.slots[index]
                .compare_exchange(v, pack(place.key, tat), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(Claim::New(index));
            }
        }
    }

    /// Holds slot `index` for a multi-check decision if it still holds `key`; answers its
    /// value before holding, or `None` when another key has taken the slot.
    pub fn hold(&self, index: usize, key: u64) -> Option<u128> {
        let slot = &self.slots[index];
        let mut spins = 0;
        loop {
            let v = slot.load(Ordering::Acquire);
            if key_of(v) != key {
                return None;
            }
            if tat_of(v) & HELD != 0 {
                backoff(&mut spins);
                continue;
            }
            if slot
                .compare_exchange(v, v | u128::from(HELD), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(v);
            }
        }
    }

    /// Ends a hold, leaving `tat` in the slot.
    pub fn unhold(&self, index: usize, key: u64, tat: Nanos) {
        self.slots[index].store(pack(key, tat & !HELD), Ordering::Release);
    }

    /// Makes the counter at `place` fresh again.
    pub fn reset(&self, place: Place) {
        let mut spins = 0;
        while let Some((index, v)) = self.find(place) {
            if tat_of(v) & HELD != 0 {
                backoff(&mut spins);
                continue;
            }
            if self.slots[index]
                .compare_exchange(v, pack(place.key, 0), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }
}

/// Whether a used slot's counter is live at `now`.
pub(super) fn is_live(v: u128, now: Nanos) -> bool {
    let tat = tat_of(v);
    tat & HELD != 0 || tat > now
}

#[cfg(test)]
mod tests {
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
    fn a_slot_is_16_bytes() {
        assert_eq!(std::mem::size_of::<AtomicU128>(), 16);
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
    fn a_full_window_refuses_then_gives_idle_slots_to_new_keys() {
        let (t, g) = (GcraSlots::new(16), one_per_second());
        for key in 1..=MAX_PROBE as u64 {
            assert!(t.acquire(&g, at(key), T0, 1).unwrap().allowed);
        }
        assert!(matches!(
            t.acquire(&g, at(5_000), T0, 1),
            Err(StoreError::Full { .. })
        ));
        // A denial or a peek needs no slot.
        assert!(t.acquire(&g, at(5_000), T0, 0).unwrap().allowed);
        // Idle counters read as fresh, so their slots can go to new keys...
        let later = T0 + S + S / 2;
        assert!(t.acquire(&g, at(5_000), later, 1).unwrap().allowed);
        assert!(t.find(at(5_000)).is_some());
        // ...and a key that lost its slot starts fresh, as it would have anyway.
        assert!(t.find(at(1)).is_none());
        assert!(t.acquire(&g, at(1), later, 1).unwrap().allowed);
        assert!(!t.acquire(&g, at(1), later, 1).unwrap().allowed);
    }

    #[test]
    fn new_keys_take_never_used_slots_before_just_idle_ones() {
        let (t, g) = (GcraSlots::new(16), one_per_second());
        assert!(t.acquire(&g, at(1), T0, 1).unwrap().allowed);
        // Key 1 is idle but only just: key 2 goes to the empty slot after it.
        let later = T0 + S + S / 2;
        assert!(t.acquire(&g, at(2), later, 1).unwrap().allowed);
        assert_eq!(t.find(at(1)).map(|f| f.0), Some(0));
        assert_eq!(t.find(at(2)).map(|f| f.0), Some(1));
        // Idle for longer than REUSE_AFTER, key 1's slot goes first.
        let much_later = later + 2 * S;
        assert!(t.acquire(&g, at(3), much_later, 1).unwrap().allowed);
        assert_eq!(t.find(at(3)).map(|f| f.0), Some(0));
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
            t.unhold(index, 7, g.next_tat(tat_of(held), T0, 8));
            let o = waiter.join().unwrap();
            assert!(o.allowed);
            assert_eq!(o.remaining, 0);
        });
        assert!(!t.acquire(&g, at(7), T0, 1).unwrap().allowed);
    }
}
