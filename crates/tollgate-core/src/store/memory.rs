//! The in-process store: two open-addressed tables of fixed-size counters, made when first
//! used; a large one is mapped as zeros (see [`huge`](super::huge)) and takes memory as
//! counters fill its pages.
//!
//! GCRA counters, the default algorithm, live in [`GcraSlots`]: 16 bytes each, updated by
//! one compare-and-swap. Every other algorithm lives in the cell table: one lock per
//! 48-byte slot (lock, digest, expiry and a 24-byte state), and a parallel array holding a
//! 16-bit tag per slot so a probe reads one dense cache line of tags before it touches a
//! slot. Neither table has a shard lock, so two cores only share a cache line when they
//! work on counters that live in it.
//!
//! Counters are found by a 95-bit keyed digest of (rule identity, key), so a slot holds no
//! string. Idle counters are not removed but reused: a slot whose state has reached its
//! idle instant (see [`Limit::idle_at`](crate::algorithm::Limit::idle_at)) is taken by the
//! next new key that probes past it. A key lives within a bounded probe window from its
//! home slot. When that window holds only live counters, a new key still gets one: it
//! evicts the live counter that carries the least, so that limiting never stops because
//! the store is full. Each counter carries a mark, set once it is in use — checked again
//! after it was made, denied, or left with at most half its allowance — and penalties
//! always carry it; it stays while the slot is its key's. A new key evicts a counter
//! without the mark (the one that reads fresh soonest) before any with it, and an idle
//! counter with the mark only after the cold live ones, so a flood of one-time keys
//! churns through its own counters and leaves those of keys in use, and of keys at their
//! limit, where they are, from one period to the next.
//! [`MemoryStore::evictions`] counts what was evicted, by reason.

use std::hash::BuildHasher;
use std::num::NonZeroU64;
use std::sync::OnceLock;

use foldhash::fast::FixedState;
use smallvec::SmallVec;

use super::gcra_slots::{self, GcraSlots, KEPT, TAT};
use super::reach::Reach;
use super::sync::{AtomicU16, AtomicU64, Mutex, MutexGuard, Ordering, Slots};
use super::tally::{self, Evictions, Reclaim, Tally};
use super::{Check, Outcomes, Store, StoreError};
use crate::algorithm::{Concurrency, Limit, State, wide_mul};
use crate::outcome::Outcome;
use crate::policy::Rule;
use crate::time::{NANOS_PER_SEC, Nanos};

/// Marks the digest of a counter's penalty entry.
const BLOCK_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// How far from its home slot a counter may live: 512 bytes of tags (four under loom,
/// whose models stay small; at most 256, see `Reach`). When the window holds no room, a
/// new key evicts within it.
const MAX_PROBE: usize = if cfg!(loom) { 4 } else { 256 };

/// Locks that serialise the insertion of keys sharing a home region.
const INSERT_STRIPES: usize = if cfg!(loom) { 2 } else { 1024 };

/// How many taken cells a new key's insert locks to choose the one to reuse when its
/// window has no idle one. It settles for the cold counter of these that reads fresh
/// soonest, and looks on through the window only while it has found none: a flood's
/// insert then costs a few locks, and a counter in use is evicted only when the whole
/// window holds nothing colder.
const EXAMINE: usize = if cfg!(loom) { 2 } else { 8 };

/// The top bit of a cell's `check`: set once its counter is in use (see the module doc).
/// Digests keep it clear.
const CELL_KEPT: u32 = 1 << 31;

/// How many slots of each table [`MemoryStore::live_estimate`] reads.
const LIVE_SAMPLE: usize = 4096;

/// How long a slot claimed for a multi-check decision is held before it can be reused.
const CLAIM_GRACE_SECS: u32 = 2;

/// Sizing of a [`MemoryStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreConfig {
    /// The live counters the store is sized for, in each of its two tables (GCRA counters,
    /// and counters of the other algorithms with penalties). A table is allocated for this
    /// many at 7/8 load when its first counter arrives and never grows: past it, a new key
    /// evicts the live counter that carries the least (see [`MemoryStore::evictions`]).
    pub capacity: usize,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        MemoryStoreConfig {
            capacity: 1_000_000,
        }
    }
}

struct Cell {
    /// The digest: 64 bits here, 31 in `check`.
    k0: u64,
    /// 31 more bits of the digest, and [`CELL_KEPT`].
    check: u32,
    /// Whole seconds since the Unix epoch from which the state reads as fresh.
    expires: u32,
    state: State,
}

impl Cell {
    const FRESH: Cell = Cell {
        k0: 0,
        check: 0,
        expires: 0,
        state: State::Fresh,
    };

    /// Whether the cell holds the counter of digest (`k0`, `check`).
    #[inline]
    fn is(&self, k0: u64, check: u32) -> bool {
        self.k0 == k0 && self.check & !CELL_KEPT == check
    }

    /// Whether the cell's key has been here before this check: it is marked, or holds a
    /// state (live or not). A GCRA stand-in (see `decide_at`) holds the TAT of its slot,
    /// which a claim sets to `now`.
    fn again(&self, now: Nanos) -> bool {
        self.kept()
            || match self.state {
                State::Fresh => false,
                State::Gcra { tat } => tat > now,
                _ => true,
            }
    }

    fn keep(&mut self) {
        self.check |= CELL_KEPT;
    }

    fn kept(&self) -> bool {
        self.check & CELL_KEPT != 0
    }
}

/// How willing an insert is to take a cell, lowest first: idle (or never used), cold, a
/// slot a decision claimed and has not held yet, idle but marked in use (its key keeps
/// its slot and mark from one period to the next), live and in use; then the one that
/// reads fresh soonest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    class: u8,
    expires: u32,
}

impl Rank {
    fn of(cell: &Cell, now: Nanos) -> Rank {
        if !is_live(cell, now) {
            return Rank {
                class: if cell.kept() { 3 } else { 0 },
                expires: 0,
            };
        }
        let class = match (&cell.state, cell.kept()) {
            (_, true) => 4,
            (State::Fresh, false) => 2,
            (_, false) => 1,
        };
        Rank {
            class,
            expires: cell.expires,
        }
    }
}

// SAFETY: an atomic integer.
#[cfg(not(loom))]
#[allow(unsafe_code)]
unsafe impl super::huge::Zeroable for AtomicU16 {}

// SAFETY: the mutex is its raw lock beside the value. The raw lock is parking_lot's one-byte
// mutex, whose zero is its unlocked `INIT` (the assertion below fails to build should
// either change), and zeros are a valid `Cell`: its integers are 0 and its state is
// `Fresh`, tag 0 of `State`'s `repr(u8)` layout.
#[cfg(not(loom))]
#[allow(unsafe_code)]
unsafe impl super::huge::Zeroable for Mutex<Cell> {}

#[cfg(not(loom))]
#[allow(unsafe_code)]
const _: () = {
    use parking_lot::lock_api::RawMutex as _;
    // SAFETY: `transmute` only builds when both types are one byte.
    let init =
        unsafe { std::mem::transmute::<parking_lot::RawMutex, u8>(parking_lot::RawMutex::INIT) };
    assert!(init == 0, "parking_lot's unlocked mutex is no longer zero");
};

/// Counters of every algorithm but GCRA, and penalties, each behind its own lock.
struct Cells {
    /// 16 bits of each slot's digest (never 0); 0 for a slot never used.
    tags: Slots<AtomicU16>,
    slots: Slots<Mutex<Cell>>,
    /// Home slots are `0..homes`; the last `MAX_PROBE` slots only extend probe windows,
    /// so a window never wraps and locks are always taken in ascending slot order.
    homes: usize,
    stripes: Box<[Mutex<()>]>,
    reach: Reach,
    capacity: usize,
    tally: Tally,
}

/// Counters in memory: thread-safe without a global lock, bounded, expiring.
pub struct MemoryStore {
    cells: OnceLock<Cells>,
    gcra: OnceLock<GcraSlots>,
    seeds: [u64; 2],
    capacity: usize,
    next_lease: AtomicU64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("table_bytes", &self.table_bytes())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryStoreConfig::default())
    }
}

fn random_seed() -> u64 {
    // loom replays each execution and needs every one to place counters alike.
    if cfg!(loom) {
        return 0x5eed;
    }
    std::hash::RandomState::new().hash_one(0x5eed_u64)
}

fn secs_ceil(ns: Nanos) -> u32 {
    u32::try_from(ns.div_ceil(NANOS_PER_SEC)).unwrap_or(u32::MAX)
}

fn is_live(cell: &Cell, now: Nanos) -> bool {
    u64::from(cell.expires) * NANOS_PER_SEC > now
}

/// A locked slot holding the counter being worked on.
struct Held<'a> {
    index: usize,
    cell: MutexGuard<'a, Cell>,
}

impl Cells {
    fn new(capacity: usize) -> Self {
        let homes = capacity.saturating_mul(8).div_ceil(7).max(MAX_PROBE);
        let len = homes.saturating_add(MAX_PROBE);
        Cells {
            tags: Slots::zeroed(len, || AtomicU16::new(0)),
            slots: Slots::zeroed(len, || Mutex::new(Cell::FRESH)),
            homes,
            stripes: (0..INSERT_STRIPES).map(|_| Mutex::new(())).collect(),
            reach: Reach::new(homes, len, MAX_PROBE),
            capacity,
            tally: Tally::new(),
        }
    }

    fn used(&self) -> impl Iterator<Item = &Mutex<Cell>> {
        self.tags
            .iter()
            .zip(self.slots.iter())
            .filter(|(t, _)| t.load(Ordering::Relaxed) != 0)
            .map(|(_, s)| s)
    }

    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
            .saturating_add(std::mem::size_of_val(&*self.tags))
            .saturating_add(std::mem::size_of_val(&*self.stripes))
            .saturating_add(self.reach.bytes())
            .saturating_add(self.tally.bytes())
    }

    /// Whether slot `index` holds a counter live at `now`, or `None` when it holds none
    /// (or another thread holds its lock).
    fn live_at(&self, index: usize, now: Nanos) -> Option<bool> {
        if self.tags.get(index)?.load(Ordering::Relaxed) == 0 {
            return None;
        }
        Some(is_live(&*self.slots.get(index)?.try_lock()?, now))
    }

    /// The slot a probe for `k0` starts at, and the tag it looks for. The home comes from
    /// the high bits and the tag from the low bits, so neighbours do not share tags.
    #[inline]
    fn home(&self, k0: u64) -> (usize, u16) {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "k0 < 2^64, so k0 * homes / 2^64 is below homes, a usize"
        )]
        let home = (wide_mul(k0, self.homes as u64) >> 64) as usize;
        (home, ((k0 & 0xffff) as u16) | 1)
    }

    /// The probe window of `home`: slots `home..home + MAX_PROBE`, with their indices and
    /// tags.
    #[inline]
    fn window(&self, home: usize) -> impl Iterator<Item = (usize, &AtomicU16, &Mutex<Cell>)> {
        let end = home.saturating_add(MAX_PROBE);
        // A home is below `homes` (see `home`), so its window lies within the
        // `homes + MAX_PROBE` slots.
        let tags = self.tags.get(home..end).unwrap_or_default();
        let slots = self.slots.get(home..end).unwrap_or_default();
        (home..end)
            .zip(tags)
            .zip(slots)
            .map(|((index, tag), slot)| (index, tag, slot))
    }

    /// Locks the slot of (k0, check), if the counter exists.
    #[inline]
    fn find(&self, k0: u64, check: u32) -> Option<Held<'_>> {
        let (home, tag) = self.home(k0);
        let mut span = None;
        for (pos, (index, t, slot)) in self.window(home).enumerate() {
            if self.reach.past(home, pos, &mut span) {
                return None;
            }
            match t.load(Ordering::Acquire) {
                0 => return None,
                t if t == tag => {
                    let cell = slot.lock();
                    if cell.is(k0, check) {
                        return Some(Held { index, cell });
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Locks the slot of (k0, check), claiming one for it when it does not exist: the
    /// first slot of its window that was never used or whose counter is idle at `now`;
    /// failing that, the best by [`Rank`] of the cells it examines (see [`EXAMINE`]).
    /// Fails only when every slot it could take is locked by another thread.
    fn find_or_insert(&self, k0: u64, check: u32, now: Nanos) -> Result<Held<'_>, StoreError> {
        if let Some(held) = self.find(k0, check) {
            return Ok(held);
        }
        let (home, tag) = self.home(k0);
        // Two threads inserting one key share its stripe, so the key gets one slot.
        #[allow(
            clippy::indexing_slicing,
            reason = "there are INSERT_STRIPES stripes, so home % INSERT_STRIPES is one of them"
        )]
        let _insert = self.stripes[home % INSERT_STRIPES].lock();
        let mut best: Option<(Held<'_>, Rank, bool, &AtomicU16)> = None;
        let mut examined = 0usize;
        // Past the key's span (see `Reach`) the pass goes on only for room: it stops at an
        // idle cell, or once it examined enough cold ones and no never-used slot is left
        // further on.
        let span = self.reach.span(home);
        let mut far = 0;
        let mut no_empty_ahead = None;
        for (pos, (index, tag_slot, slot)) in self.window(home).enumerate() {
            if pos >= span
                && best.as_ref().is_some_and(|(_, rank, _, _)| {
                    rank.class == 0
                        || rank.class == 1
                            && examined >= EXAMINE
                            && *no_empty_ahead
                                .get_or_insert_with(|| self.reach.used_from(home, pos))
                })
            {
                break;
            }
            let t = tag_slot.load(Ordering::Acquire);
            if t != 0 && pos < span && self.reach.holds_home_of(index, pos) {
                far = pos;
            }
            if t == tag {
                let cell = slot.lock();
                if cell.is(k0, check) {
                    return Ok(Held { index, cell });
                }
                // Not ours; it may still be taken below.
            }
            let looking = match &best {
                None => true,
                Some((_, rank, _, _)) => {
                    rank.class > 1 || (rank.class == 1 && (examined < EXAMINE || t == 0))
                }
            };
            // A slot someone holds is in use: skip it rather than wait.
            if looking && let Some(cell) = slot.try_lock() {
                examined = examined.saturating_add(1);
                let rank = Rank::of(&cell, now);
                if best.as_ref().is_none_or(|(_, b, _, _)| rank < *b) {
                    best = Some((Held { index, cell }, rank, t == 0, tag_slot));
                }
            }
            if t == 0 {
                break;
            }
        }
        let (mut held, rank, never_used, tag_slot) = best.ok_or(StoreError::Full {
            capacity: self.capacity,
        })?;
        let what = match rank.class {
            _ if never_used => Reclaim::Empty,
            1 => Reclaim::Cold,
            4 => Reclaim::InUse,
            // An idle counter, or a claim that holds no state yet.
            _ => Reclaim::Expired,
        };
        self.tally.made(home, what);
        held.cell.k0 = k0;
        held.cell.check = check;
        held.cell.expires = 0;
        held.cell.state = State::Fresh;
        tag_slot.store(tag, Ordering::Release);
        let pos = held.index.saturating_sub(home);
        self.reach.took(home, held.index, pos, far.max(pos));
        Ok(held)
    }
}

/// Where one check of a multi-check decision found its counter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spot {
    /// No counter yet (previews only): the check reads a fresh state.
    Nowhere,
    Cell(usize),
    Gcra(usize),
}

impl MemoryStore {
    /// A store sized by `config`. Each table is allocated when its first counter arrives;
    /// nothing grows later.
    pub fn new(config: MemoryStoreConfig) -> Self {
        MemoryStore {
            cells: OnceLock::new(),
            gcra: OnceLock::new(),
            seeds: [random_seed(), random_seed()],
            capacity: config.capacity.max(1),
            next_lease: AtomicU64::new(1),
        }
    }

    /// The live counters each table of this store is sized for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn cells(&self) -> &Cells {
        self.cells.get_or_init(|| Cells::new(self.capacity))
    }

    fn gcra(&self) -> &GcraSlots {
        self.gcra.get_or_init(|| GcraSlots::new(self.capacity))
    }

    /// Slots taken from other counters since the store was made, by reason, over both
    /// tables and penalties; the source of `tollgate_store_evictions_total{reason}`.
    ///
    /// A few relaxed atomic loads: cheap enough to read at any time. Counts only grow.
    pub fn evictions(&self) -> Evictions {
        let cells = self
            .cells
            .get()
            .map_or_else(Evictions::default, |c| c.tally.evictions());
        let gcra = self
            .gcra
            .get()
            .map_or_else(Evictions::default, |g| g.tally().evictions());
        tally::sum(cells, gcra)
    }

    /// The slots of both tables that hold a counter, live or idle (penalties included),
    /// kept as counters are made and reset: a few relaxed loads, no scan. Never more than
    /// the tables' slots, as a table never grows (idle counters stay counted until their
    /// slots are reused).
    pub fn resident_counters(&self) -> usize {
        let cells = self.cells.get().map_or(0, |c| c.tally.resident());
        cells.saturating_add(self.gcra.get().map_or(0, |g| g.tally().resident()))
    }

    /// An estimate of the counters live at `now`, for `tollgate_live_counters`:
    /// [`resident_counters`](Self::resident_counters) times the share of them live among
    /// at most 4,096 slots of each table, evenly spaced. Its cost does not grow with the
    /// capacity; a table of at most that many slots is read whole, and so is exact.
    pub fn live_estimate(&self, now: Nanos) -> usize {
        fn estimate(resident: usize, len: usize, live_at: impl Fn(usize) -> Option<bool>) -> usize {
            let step = len.div_ceil(LIVE_SAMPLE).max(1);
            let (mut used, mut live) = (0usize, 0usize);
            for index in (0..len).step_by(step) {
                if let Some(l) = live_at(index) {
                    used = used.saturating_add(1);
                    live = live.saturating_add(usize::from(l));
                }
            }
            // None when no slot sampled holds a counter.
            let share = wide_mul(resident as u64, live as u64).checked_div(used as u128);
            share.map_or(0, |s| {
                usize::try_from(s).unwrap_or(usize::MAX).min(resident)
            })
        }
        let cells = self.cells.get().map_or(0, |c| {
            estimate(c.tally.resident(), c.slots.len(), |i| c.live_at(i, now))
        });
        let gcra = self.gcra.get().map_or(0, |g| {
            estimate(g.tally().resident(), g.len(), |i| g.live_at(i, now))
        });
        cells.saturating_add(gcra)
    }

    /// Counters live at `now` (a full scan: for tests, not the hot path; see
    /// [`live_estimate`](Self::live_estimate) for metrics).
    pub fn live(&self, now: Nanos) -> usize {
        let cells = self
            .cells
            .get()
            .map_or(0, |c| c.used().filter(|s| is_live(&s.lock(), now)).count());
        let gcra = self.gcra.get().map_or(0, |g| {
            g.used()
                .filter(|&tat| gcra_slots::is_live(tat, now))
                .count()
        });
        cells.saturating_add(gcra)
    }

    /// Bytes held by the tables allocated so far, with their tags and insert locks (boxed
    /// log and lease states aside).
    pub fn table_bytes(&self) -> usize {
        let cells = self.cells.get().map_or(0, Cells::bytes);
        cells.saturating_add(self.gcra.get().map_or(0, GcraSlots::bytes))
    }

    /// Frees the boxed states (logs, leases) of counters idle at `now`; returns how many
    /// counters are idle. Slots are reused in place, so this is only about those boxes.
    pub fn sweep(&self, now: Nanos) -> usize {
        let mut idle = 0usize;
        if let Some(cells) = self.cells.get() {
            for slot in cells.used() {
                let mut cell = slot.lock();
                if !is_live(&cell, now) {
                    cell.state = State::Fresh;
                    idle = idle.saturating_add(1);
                }
            }
        }
        if let Some(g) = self.gcra.get() {
            let gcra = g.used().filter(|&tat| !gcra_slots::is_live(tat, now));
            idle = idle.saturating_add(gcra.count());
        }
        idle
    }

    #[inline]
    fn digest(&self, rule: &Rule, key: &str) -> (u64, u32) {
        let seed = rule.seed();
        let k0 = FixedState::with_seed(self.seeds[0] ^ seed).hash_one(key);
        let check = FixedState::with_seed(self.seeds[1] ^ seed).hash_one(key) & 0xffff_ffff;
        let check = check as u32 & !CELL_KEPT;
        (k0, check)
    }

    /// The penalty outcome when counter (tag, check) of `rule` is blocked at `now`.
    fn blocked(&self, rule: &Rule, tag: u64, check: u32, now: Nanos) -> Option<Outcome> {
        rule.block_for?;
        let held = self.cells.get()?.find(tag ^ BLOCK_SALT, check)?;
        let State::Blocked { until } = held.cell.state else {
            return None;
        };
        (until > now).then(|| {
            let wait = until.saturating_sub(now);
            Outcome {
                blocked: true,
                ..Outcome::deny(rule.limit.quota(), 0, wait, Some(wait))
            }
        })
    }

    /// Records a denial's penalty, when the rule has one.
    fn penalise(&self, rule: &Rule, tag: u64, check: u32, now: Nanos) {
        let Some(block_for) = rule.block_for else {
            return;
        };
        // A full store skips the penalty; the denial itself stands.
        if let Ok(mut held) = self.cells().find_or_insert(tag ^ BLOCK_SALT, check, now)
            && !is_live(&held.cell, now)
        {
            let until = now.saturating_add(block_for);
            held.cell.state = State::Blocked { until };
            held.cell.expires = secs_ceil(until);
            // Evicting a penalty would lift it.
            held.cell.keep();
        }
    }

    fn lease_for(&self, limit: &Limit) -> u64 {
        match limit {
            Limit::Concurrency(_) => self.next_lease.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Checks and, when admitted and `commit`, applies one check to its locked cell.
    ///
    /// With `commit`, a check that costs anything marks the counter in use when it leaves
    /// it so (see [`gcra_slots::in_use`]).
    fn apply(&self, check: &Check<'_>, cell: &mut Cell, now: Nanos, commit: bool) -> Outcome {
        let again = cell.again(now);
        if !is_live(cell, now) {
            cell.state = State::Fresh;
        }
        let limit = &check.rule.limit;
        let mut outcome = limit.check(&cell.state, now, check.cost);
        if commit && check.cost > 0 {
            if outcome.allowed {
                let lease = self.lease_for(limit);
                limit.commit(&mut cell.state, now, check.cost, lease);
                cell.expires = secs_ceil(limit.idle_at(&cell.state));
                if let Some(lease) = NonZeroU64::new(lease) {
                    outcome.lease = Some(lease);
                }
            }
            if gcra_slots::in_use(again, &outcome) {
                cell.keep();
            }
        }
        outcome
    }

    #[inline]
    fn acquire_one(&self, check: &Check<'_>, now: Nanos) -> Result<Outcome, StoreError> {
        let (tag, sum) = self.digest(check.rule, &check.key);
        if let Some(blocked) = self.blocked(check.rule, tag, sum, now) {
            return Ok(blocked);
        }
        let outcome = match &check.rule.limit {
            Limit::Gcra(gcra) => {
                let slots = self.gcra();
                slots.acquire(gcra, slots.place(tag, sum), now, check.cost)?
            }
            _ => match self.cells.get().and_then(|c| c.find(tag, sum)) {
                Some(mut held) => self.apply(check, &mut held.cell, now, true),
                None => {
                    let outcome = check.rule.limit.check(&State::Fresh, now, check.cost);
                    if outcome.allowed && check.cost > 0 {
                        let mut held = self.cells().find_or_insert(tag, sum, now)?;
                        self.apply(check, &mut held.cell, now, true)
                    } else {
                        outcome
                    }
                }
            },
        };
        if !outcome.allowed {
            self.penalise(check.rule, tag, sum, now);
        }
        Ok(outcome)
    }

    /// Finds (and with `commit`, claims) the counter of one check of a multi-check
    /// decision, without holding it.
    fn spot(
        &self,
        check: &Check<'_>,
        tag: u64,
        sum: u32,
        now: Nanos,
        commit: bool,
    ) -> Result<Spot, StoreError> {
        if let Limit::Gcra(_) = check.rule.limit {
            let slots = match (commit, self.gcra.get()) {
                (true, _) => self.gcra(),
                (false, Some(slots)) => slots,
                (false, None) => return Ok(Spot::Nowhere),
            };
            let place = slots.place(tag, sum);
            let found = match slots.find(place) {
                Some((i, _)) => Some(i),
                // A TAT of `now` reads as fresh, and as only just idle it is the last
                // slot another new key would take before this decision holds it.
                None if commit => Some(slots.claim(place, now, now, false)?.index()),
                None => None,
            };
            return Ok(found.map_or(Spot::Nowhere, Spot::Gcra));
        }
        if commit {
            let mut held = self.cells().find_or_insert(tag, sum, now)?;
            if !is_live(&held.cell, now) {
                held.cell.state = State::Fresh;
                held.cell.expires = secs_ceil(now).saturating_add(CLAIM_GRACE_SECS);
            }
            Ok(Spot::Cell(held.index))
        } else {
            Ok(self
                .cells
                .get()
                .and_then(|c| c.find(tag, sum))
                .map_or(Spot::Nowhere, |h| Spot::Cell(h.index)))
        }
    }

    /// Applies several checks as a unit; with `commit` false, only reports.
    #[inline(never)]
    fn acquire_many(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        commit: bool,
    ) -> Result<Outcomes, StoreError> {
        let digests: SmallVec<[(u64, u32); 4]> =
            checks.iter().map(|c| self.digest(c.rule, &c.key)).collect();
        // Penalties are separate counters, looked up before the decision's own locks are
        // taken: a blocked check denies the whole decision like any other denial.
        let blocked: SmallVec<[Option<Outcome>; 4]> = checks
            .iter()
            .zip(&digests)
            .map(|(c, &(tag, sum))| self.blocked(c.rule, tag, sum, now))
            .collect();
        // Another decision may reuse an idle slot between claiming and holding it; then the
        // claim is made again.
        for _ in 0..8 {
            let mut spots: SmallVec<[Spot; 4]> = SmallVec::with_capacity(checks.len());
            for (check, &(tag, sum)) in checks.iter().zip(&digests) {
                spots.push(self.spot(check, tag, sum, now, commit)?);
            }
            if let Some(outcomes) = self.decide_at(checks, &digests, &blocked, &spots, now, commit)
            {
                if commit {
                    for ((check, &(tag, sum)), o) in checks.iter().zip(&digests).zip(&outcomes) {
                        if !o.allowed && !o.blocked {
                            self.penalise(check.rule, tag, sum, now);
                        }
                    }
                }
                return Ok(outcomes);
            }
        }
        Err(StoreError::Unavailable(
            "memory store: counters kept moving under a decision".into(),
        ))
    }

    /// Holds the spots' counters, GCRA slots first then cells, each in ascending order so
    /// that decisions sharing counters cannot wait on each other, and decides. `None` when
    /// a counter was moved by another key since it was spotted.
    fn decide_at(
        &self,
        checks: &[Check<'_>],
        digests: &[(u64, u32)],
        blocked: &[Option<Outcome>],
        spots: &[Spot],
        now: Nanos,
        commit: bool,
    ) -> Option<Outcomes> {
        let sorted = |pick: fn(&Spot) -> Option<usize>| {
            let mut v: SmallVec<[usize; 4]> = spots.iter().filter_map(pick).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let gcra_order = sorted(|s| match s {
            Spot::Gcra(i) => Some(*i),
            _ => None,
        });
        let cell_order = sorted(|s| match s {
            Spot::Cell(i) => Some(*i),
            _ => None,
        });
        let key_at = |i: usize, want: fn(&Spot, usize) -> bool| {
            spots
                .iter()
                .zip(digests)
                .find(|(s, _)| want(s, i))
                .map_or((0, 0), |(_, &d)| d)
        };

        // GCRA slots are read into stand-in cells; with `commit`, held until written back.
        let slots = self.gcra.get();
        // Each with the TAT it was read at, below which the slot's TAT must never go.
        let mut gcra_cells: SmallVec<[(Nanos, Cell); 4]> = SmallVec::new();
        let mut ok = true;
        for &i in &gcra_order {
            let (tag, sum) = key_at(i, |s, i| *s == Spot::Gcra(i));
            let Some(slots) = slots else {
                ok = false;
                break;
            };
            let value = if commit {
                slots.hold(i, slots.place(tag, sum).key)
            } else {
                slots.find(slots.place(tag, sum)).map(|(_, tat)| tat)
            };
            let Some(word) = value else {
                ok = false;
                break;
            };
            let tat = word & TAT;
            // The stand-in carries the slot's mark, and gets one as a cell would.
            let mut cell = Cell {
                expires: u32::MAX,
                state: State::Gcra { tat },
                ..Cell::FRESH
            };
            if word & KEPT != 0 {
                cell.keep();
            }
            gcra_cells.push((tat, cell));
        }
        let release = |gcra_cells: &[(Nanos, Cell)]| {
            if let (true, Some(slots)) = (commit, slots) {
                for (&i, &(held, ref cell)) in gcra_order.iter().zip(gcra_cells) {
                    let tat = match cell.state {
                        State::Gcra { tat } => tat.max(held),
                        _ => held,
                    };
                    slots.unhold(i, tat | gcra_slots::kept_bit(cell.kept()));
                }
            }
        };
        if !ok {
            release(&gcra_cells);
            return None;
        }
        let cells = self.cells.get();
        let mut locked: SmallVec<[MutexGuard<'_, Cell>; 4]> = match cells {
            // An index past the table (which `spot` never gives) locks nothing, and fails
            // the decision below.
            Some(c) => cell_order
                .iter()
                .filter_map(|&i| c.slots.get(i))
                .map(Mutex::lock)
                .collect(),
            None => SmallVec::new(),
        };
        let still_ours = cell_order.iter().zip(&locked).all(|(&i, cell)| {
            let (k0, sum) = key_at(i, |s, i| *s == Spot::Cell(i));
            cell.is(k0, sum)
        });
        if !still_ours || locked.len() != cell_order.len() {
            drop(locked);
            release(&gcra_cells);
            return None;
        }

        let mut fresh = Cell::FRESH;
        let mut outcomes = Outcomes::with_capacity(checks.len());
        macro_rules! cell {
            ($spot:expr) => {
                cell_for(
                    $spot,
                    &gcra_order,
                    &mut gcra_cells,
                    &cell_order,
                    &mut locked,
                    &mut fresh,
                )
            };
        }
        for ((check, &spot), blocked) in checks.iter().zip(spots).zip(blocked) {
            let outcome = match blocked {
                Some(b) => *b,
                None => self.apply(check, cell!(spot), now, false),
            };
            outcomes.push(outcome);
        }
        if outcomes.iter().any(|o| !o.allowed) {
            // Nothing is consumed: the limits that would have admitted report their state
            // as it stays. Those that denied are at their limit, and marked in use.
            for ((check, &spot), o) in checks.iter().zip(spots).zip(outcomes.iter_mut()) {
                if o.allowed {
                    *o = check.rule.limit.check(&cell!(spot).state, now, 0);
                } else if commit && !o.blocked && check.cost > 0 {
                    cell!(spot).keep();
                }
            }
        } else if commit {
            for ((check, &spot), o) in checks.iter().zip(spots).zip(outcomes.iter_mut()) {
                *o = self.apply(check, cell!(spot), now, true);
            }
        }
        drop(locked);
        release(&gcra_cells);
        Some(outcomes)
    }
}

/// The cell a check of a multi-check decision works on: a held GCRA slot's stand-in, a
/// locked cell, or `fresh` for a counter that does not exist (previews).
fn cell_for<'c>(
    spot: Spot,
    gcra_order: &[usize],
    gcra_cells: &'c mut [(Nanos, Cell)],
    cell_order: &[usize],
    locked: &'c mut [MutexGuard<'_, Cell>],
    fresh: &'c mut Cell,
) -> &'c mut Cell {
    match spot {
        // The orders and what they hold line up, one for one.
        Spot::Gcra(i) => match gcra_order
            .binary_search(&i)
            .map(|pos| gcra_cells.get_mut(pos))
        {
            Ok(Some((_, cell))) => cell,
            _ => fresh,
        },
        Spot::Cell(i) => match cell_order.binary_search(&i).map(|pos| locked.get_mut(pos)) {
            Ok(Some(cell)) => cell,
            _ => fresh,
        },
        Spot::Nowhere => fresh,
    }
}

impl MemoryStore {
    /// `acquire` (`consume`) or `preview`, answered in place.
    #[inline]
    pub fn answer(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        consume: bool,
    ) -> Result<Outcomes, StoreError> {
        match checks {
            [] => Ok(Outcomes::new()),
            [one] if consume => self.acquire_one(one, now).map(|o| smallvec::smallvec![o]),
            many => self.acquire_many(many, now, consume),
        }
    }
}

impl Store for MemoryStore {
    #[inline]
    fn acquire(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send {
        std::future::ready(self.answer(checks, now, true))
    }

    fn preview(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send {
        std::future::ready(self.answer(checks, now, false))
    }

    #[inline]
    fn decide_now(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        consume: bool,
    ) -> Option<Result<Outcomes, StoreError>> {
        Some(self.answer(checks, now, consume))
    }

    fn answers_at_once(&self) -> bool {
        true
    }

    fn release(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let (tag, sum) = self.digest(rule, key);
        let released = match self.cells.get().and_then(|c| c.find(tag, sum)) {
            Some(mut held) => {
                let done = Concurrency::release(&mut held.cell.state, now, lease);
                held.cell.expires = secs_ceil(rule.limit.idle_at(&held.cell.state));
                done
            }
            None => false,
        };
        std::future::ready(Ok(released))
    }

    fn renew(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let renewed = match (&rule.limit, self.cells.get()) {
            (Limit::Concurrency(c), Some(cells)) => {
                let (tag, sum) = self.digest(rule, key);
                match cells.find(tag, sum) {
                    Some(mut held) => {
                        let done = c.renew(&mut held.cell.state, now, lease);
                        held.cell.expires = secs_ceil(rule.limit.idle_at(&held.cell.state));
                        done
                    }
                    None => false,
                }
            }
            _ => false,
        };
        std::future::ready(Ok(renewed))
    }

    fn reset(&self, rule: &Rule, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (tag, sum) = self.digest(rule, key);
        if let Some(slots) = self.gcra.get() {
            slots.reset(slots.place(tag, sum));
        }
        if let Some(cells) = self.cells.get() {
            for t in [tag, tag ^ BLOCK_SALT] {
                if let Some(mut held) = cells.find(t, sum) {
                    held.cell.state = State::Fresh;
                    held.cell.expires = 0;
                    held.cell.check &= !CELL_KEPT;
                }
            }
        }
        std::future::ready(Ok(()))
    }
}

/// Answers `f` at once, for the tests: the memory store never waits.
#[cfg(test)]
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!(),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Mutex<Cell>>(), 48);
    }

    #[test]
    fn a_large_cell_table_starts_as_zeros_and_counts_like_a_small_one() {
        let policy = crate::Policy::from_yaml(
            "rules: [{name: log, key: '{user}', algorithm: sliding_log, limit: 3, period: 1m, \
             on_exceed: {block_for: 1m}}]",
        )
        .unwrap();
        let rule = &policy.rules()[0];
        let now = 1_767_571_200 * NANOS_PER_SEC;
        // The small table has room to spare: one sized for exactly the 1,000 counters
        // below may, with some seeds, find a window full and evict one of them.
        for capacity in [2_000, 1_000_000] {
            let store = MemoryStore::new(MemoryStoreConfig { capacity });
            for user in 0..500 {
                let check = Check {
                    rule,
                    key: format!("user:{user}").into(),
                    cost: 1,
                };
                let admitted = (0..5)
                    .filter(|_| {
                        ready(store.acquire(std::slice::from_ref(&check), now)).unwrap()[0].allowed
                    })
                    .count();
                assert_eq!(admitted, 3, "capacity {capacity}, user {user}");
                let blocked =
                    ready(store.acquire(std::slice::from_ref(&check), now + NANOS_PER_SEC))
                        .unwrap();
                assert!(blocked[0].blocked, "capacity {capacity}, user {user}");
            }
            let cells = store.cells.get().unwrap();
            #[cfg(target_os = "linux")]
            assert_eq!(cells.slots.is_mapped(), capacity > 2_000);
            // Each user's log and penalty.
            assert_eq!(store.live(now), 1_000);
            // Dropping the store drops the boxed logs in the mapped table.
        }
    }
}

/// Decisions of several limits under loom (see `gcra_slots`'s loom tests):
/// `RUSTFLAGS="--cfg loom" cargo test -p tollgate-core --release --lib loom`.
#[cfg(all(test, loom))]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod loom_tests {
    use std::sync::Arc as StdArc;

    use loom::sync::Arc;

    use super::*;
    use crate::Policy;

    const NOW: Nanos = 1_767_571_200 * NANOS_PER_SEC;

    /// `gcra`: 10 at once; `window`: 1 a minute; `wide`: 10 a minute.
    fn policy() -> StdArc<Policy> {
        StdArc::new(
            Policy::from_yaml(
                "rules: [{name: gcra, key: '{user}', limit: 10, period: 1s}, \
                 {name: window, key: '{user}', algorithm: fixed_window, limit: 1, period: 1m}, \
                 {name: wide, key: '{user}', algorithm: fixed_window, limit: 10, period: 1m}]",
            )
            .unwrap(),
        )
    }

    /// A check of cost 1 of rule `name` for `key`.
    fn check<'p>(policy: &'p Policy, name: &str, key: &str) -> Check<'p> {
        Check {
            rule: policy.rules().iter().find(|r| &*r.name == name).unwrap(),
            key: key.to_owned().into(),
            cost: 1,
        }
    }

    /// The checks of the rules named in `names`, in that order, for key `u`.
    fn checks<'p>(policy: &'p Policy, names: &[&str]) -> Vec<Check<'p>> {
        names.iter().map(|n| check(policy, n, "u")).collect()
    }

    fn admitted(store: &MemoryStore, policy: &Policy, names: &[&str]) -> bool {
        let outcomes = ready(store.acquire(&checks(policy, names), NOW)).unwrap();
        outcomes.iter().all(|o| o.allowed)
    }

    /// A store whose two tables exist: made lazily, they would be made under the race,
    /// behind a lock loom does not model.
    fn store(policy: &Policy) -> Arc<MemoryStore> {
        let store = MemoryStore::new(MemoryStoreConfig { capacity: 3 });
        for name in ["gcra", "window"] {
            let warm = [check(policy, name, "warm")];
            assert!(ready(store.acquire(&warm, NOW)).unwrap()[0].allowed);
        }
        Arc::new(store)
    }

    /// What the GCRA counter of `u` has left (a check of cost 0 only looks).
    fn gcra_left(store: &MemoryStore, policy: &Policy) -> u64 {
        let mut peek = checks(policy, &["gcra"]);
        peek[0].cost = 0;
        ready(store.preview(&peek, NOW)).unwrap()[0].remaining
    }

    /// Whether a check of the window rule (1 a minute) for `key` at `now` admits.
    fn window(store: &MemoryStore, policy: &Policy, key: &str, now: Nanos) -> bool {
        let check = [check(policy, "window", key)];
        ready(store.acquire(&check, now)).unwrap()[0].allowed
    }

    /// A check of `cost` of rule `wide` for `key` (cost 0: a preview).
    fn wide(store: &MemoryStore, policy: &Policy, key: &str, cost: u64) -> Outcome {
        let c = Check {
            cost,
            ..check(policy, "wide", key)
        };
        let o = if cost == 0 {
            ready(store.preview(std::slice::from_ref(&c), NOW))
        } else {
            ready(store.acquire(std::slice::from_ref(&c), NOW))
        };
        o.unwrap()[0]
    }

    /// Runs `race` in every interleaving loom finds, each time on a new store (see
    /// [`store`]) with [`policy`].
    fn model(race: impl Fn(&Arc<MemoryStore>, &StdArc<Policy>) + Send + Sync + 'static) {
        let policy = policy();
        let mut model = loom::model::Builder::new();
        // Filling a probe window before a race is a long run of loads and locks.
        model.max_branches = 100_000;
        model.check(move || race(&store(&policy), &policy));
    }

    /// Runs `theirs` on another thread and `mine` on this one; answers both results.
    fn race<R: Send + 'static>(
        store: &Arc<MemoryStore>,
        policy: &StdArc<Policy>,
        theirs: impl FnOnce(&MemoryStore, &Policy) -> R + Send + 'static,
        mine: impl FnOnce(&MemoryStore, &Policy) -> R,
    ) -> (R, R) {
        let (s2, p2) = (store.clone(), policy.clone());
        crate::store::sync::race(move || theirs(&s2, &p2), || mine(store, policy))
    }

    #[test]
    fn the_first_checks_of_a_new_window_key_admit_once() {
        model(|store, policy| {
            let (theirs, mine) = race(
                store,
                policy,
                |s, p| window(s, p, "new", NOW),
                |s, p| window(s, p, "new", NOW),
            );
            assert!(mine ^ theirs, "admitted {mine} and {theirs}");
        });
    }

    #[test]
    fn a_window_check_racing_a_new_key_for_its_idle_cell_counts_only_itself() {
        model(|store, policy| {
            let rule = &policy.rules()[1];
            let cells = store.cells.get().unwrap();
            // Every slot of the new key's window holds a counter, idle a minute later.
            let (home, _) = cells.home(store.digest(rule, "fresh").0);
            let window_full = || {
                cells.tags[home..home + MAX_PROBE]
                    .iter()
                    .all(|t| t.load(Ordering::Relaxed) != 0)
            };
            let mut keys = vec!["warm".to_owned()];
            for i in 0..200 {
                if window_full() {
                    break;
                }
                let key = format!("old{i}");
                if ready(store.acquire(&[check(policy, "window", &key)], NOW)).is_ok() {
                    keys.push(key);
                }
            }
            assert!(window_full());
            // The key in the slot the new key takes first, which it checks meanwhile.
            let owner = keys
                .into_iter()
                .find(|k| {
                    let (k0, sum) = store.digest(rule, k);
                    cells.find(k0, sum).is_some_and(|h| h.index == home)
                })
                .unwrap();
            let later = NOW + 120 * NANOS_PER_SEC;
            let o2 = owner.clone();
            let (theirs, mine) = race(
                store,
                policy,
                move |s, p| window(s, p, &o2, later),
                |s, p| window(s, p, "fresh", later),
            );
            assert!(mine && theirs);
            // Each counter holds its own one admission: a second check of either denies.
            assert!(!window(store, policy, &owner, later));
            assert!(!window(store, policy, "fresh", later));
        });
    }

    #[test]
    fn a_window_check_racing_the_eviction_of_its_live_cell_counts_only_itself() {
        model(|store, policy| {
            let rule = &policy.rules()[2];
            let cells = store.cells.get().unwrap();
            // Every slot of the new key's window holds a live counter: one check each of
            // ten a minute, so cold.
            let (home, _) = cells.home(store.digest(rule, "fresh").0);
            let window_full = || {
                cells.tags[home..home + MAX_PROBE]
                    .iter()
                    .all(|t| t.load(Ordering::Relaxed) != 0)
            };
            let mut keys = Vec::new();
            for i in 0..200 {
                if window_full() {
                    break;
                }
                let key = format!("old{i}");
                assert!(wide(store, policy, &key, 1).allowed);
                keys.push(key);
            }
            assert!(window_full());
            // The new key evicts the first cold cell of its window; its key checks again
            // meanwhile.
            let victim = (home..home + MAX_PROBE)
                .find(|&i| !cells.slots[i].lock().kept())
                .unwrap();
            let owner = keys
                .into_iter()
                .find(|k| {
                    let (k0, sum) = store.digest(rule, k);
                    cells.find(k0, sum).is_some_and(|h| h.index == victim)
                })
                .unwrap();
            let o2 = owner.clone();
            let (theirs, mine) = race(
                store,
                policy,
                move |s, p| wide(s, p, &o2, 1).allowed,
                |s, p| wide(s, p, "fresh", 1).allowed,
            );
            assert!(mine && theirs);
            let copies = |key: &str| {
                let (k0, sum) = store.digest(rule, key);
                cells.slots.iter().filter(|c| c.lock().is(k0, sum)).count()
            };
            // The owner's counter holds both its checks, or, evicted before its second,
            // that one alone; the new key's holds its one check, unless the owner, made
            // anew, evicted it in turn. Neither ever holds the other's.
            assert_eq!(copies(&owner), 1);
            assert!(copies("fresh") <= 1);
            let owner_left = wide(store, policy, &owner, 0).remaining;
            let fresh_left = wide(store, policy, "fresh", 0).remaining;
            match (owner_left, fresh_left) {
                (8, 9) | (9, 9) => assert_eq!(copies("fresh"), 1),
                (9, 10) => assert_eq!(copies("fresh"), 0),
                other => panic!("left {other:?}"),
            }
        });
    }

    #[test]
    fn a_decision_racing_a_single_check_for_its_last_unit_consumes_all_or_nothing() {
        model(|store, policy| {
            let (decision, single) = race(
                store,
                policy,
                |s, p| admitted(s, p, &["gcra", "window"]),
                |s, p| admitted(s, p, &["window"]),
            );
            assert!(decision ^ single, "admitted {decision} and {single}");
            // A denied decision leaves its GCRA counter as it was.
            let left = gcra_left(store, policy);
            assert_eq!(left, if decision { 9 } else { 10 });
        });
    }

    #[test]
    fn decisions_naming_the_same_limits_in_either_order_admit_one_without_deadlock() {
        model(|store, policy| {
            let (theirs, mine) = race(
                store,
                policy,
                |s, p| admitted(s, p, &["gcra", "window"]),
                |s, p| admitted(s, p, &["window", "gcra"]),
            );
            assert!(mine ^ theirs, "admitted {mine} and {theirs}");
            assert_eq!(gcra_left(store, policy), 9);
        });
    }
}
