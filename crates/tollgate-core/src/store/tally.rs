//! What the memory store's tables did to make room: counters made in never-used slots,
//! and slots taken from other counters, by reason. Counted only where a new counter is
//! made, never on a check of an existing one, in a few cache-padded shards so that cores
//! making counters in different regions of a table do not share a line.

use crossbeam_utils::CachePadded;

use super::sync::{AtomicU64, Ordering};

/// Shards of the tally (two under loom, whose models stay small).
const SHARDS: usize = if cfg!(loom) { 2 } else { 16 };

/// What the slot a new counter took held before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reclaim {
    /// Nothing: a never-used slot (or a reset one), so the table holds one more counter.
    Empty,
    /// A counter that already read as fresh.
    Expired,
    /// A live counter made by one check and far from its limit.
    Cold,
    /// A live counter in use: checked again after it was made, near its limit, or a
    /// penalty.
    InUse,
}

/// Why a live counter, or an expired one, gave its slot to a new key; the label of
/// `tollgate_store_evictions_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictionReason {
    /// The counter had already reached its idle instant: it read exactly as a fresh one,
    /// so nothing was lost.
    Expired,
    /// The counter was live but cold: made by a single check and far from its limit (a
    /// flood of one-time keys evicts these). Its key, should it come back, starts afresh
    /// with at most what one check took.
    Cold,
    /// The counter was live and in use (checked again after it was made, near its limit,
    /// or a penalty): the store is smaller than the keys in use within their periods.
    /// Raise `store.capacity` when this grows.
    InUse,
}

impl EvictionReason {
    /// Every reason, in the order [`Evictions::by_reason`] lists them.
    pub const ALL: [EvictionReason; 3] = [
        EvictionReason::Expired,
        EvictionReason::Cold,
        EvictionReason::InUse,
    ];

    /// The metric label: `expired`, `cold` or `in_use`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionReason::Expired => "expired",
            EvictionReason::Cold => "cold",
            EvictionReason::InUse => "in_use",
        }
    }
}

/// Slots the memory store took from other counters since it was made, by reason, over
/// both tables and penalties (see [`MemoryStore::evictions`](super::MemoryStore::evictions)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    /// Counters that already read as fresh.
    pub expired: u64,
    /// Live counters made by one check and far from their limit.
    pub cold: u64,
    /// Live counters in use.
    pub in_use: u64,
}

impl Evictions {
    /// The count of `reason`.
    pub fn get(&self, reason: EvictionReason) -> u64 {
        match reason {
            EvictionReason::Expired => self.expired,
            EvictionReason::Cold => self.cold,
            EvictionReason::InUse => self.in_use,
        }
    }

    /// Each reason with its count, for a labelled counter.
    pub fn by_reason(&self) -> [(EvictionReason, u64); 3] {
        EvictionReason::ALL.map(|r| (r, self.get(r)))
    }

    fn add(self, other: Evictions) -> Evictions {
        Evictions {
            expired: self.expired.wrapping_add(other.expired),
            cold: self.cold.wrapping_add(other.cold),
            in_use: self.in_use.wrapping_add(other.in_use),
        }
    }
}

struct Shard {
    /// Slots holding a counter, as made minus forgotten; wraps, since a counter may be
    /// made in one shard and forgotten in another, and only the sum means anything.
    resident: AtomicU64,
    expired: AtomicU64,
    cold: AtomicU64,
    in_use: AtomicU64,
}

/// One table's tally.
pub(super) struct Tally {
    shards: Box<[CachePadded<Shard>]>,
}

impl Tally {
    pub fn new() -> Self {
        Tally {
            shards: (0..SHARDS)
                .map(|_| {
                    CachePadded::new(Shard {
                        resident: AtomicU64::new(0),
                        expired: AtomicU64::new(0),
                        cold: AtomicU64::new(0),
                        in_use: AtomicU64::new(0),
                    })
                })
                .collect(),
        }
    }

    #[inline]
    #[allow(
        clippy::indexing_slicing,
        reason = "there are SHARDS shards, so home % SHARDS is one of them"
    )]
    fn shard(&self, home: usize) -> &Shard {
        &self.shards[home % SHARDS]
    }

    /// Records that a new counter homed at `home` took a slot that held `what`.
    #[inline]
    pub fn made(&self, home: usize, what: Reclaim) {
        let shard = self.shard(home);
        let counter = match what {
            Reclaim::Empty => &shard.resident,
            Reclaim::Expired => &shard.expired,
            Reclaim::Cold => &shard.cold,
            Reclaim::InUse => &shard.in_use,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that a counter homed at `home` was forgotten, its slot left to no key.
    pub fn forgot(&self, home: usize) {
        self.shard(home).resident.fetch_sub(1, Ordering::Relaxed);
    }

    /// Slots holding a counter, live or idle.
    pub fn resident(&self) -> usize {
        let sum = self.shards.iter().fold(0u64, |sum, s| {
            sum.wrapping_add(s.resident.load(Ordering::Relaxed))
        });
        // A reading taken while a counter is made in one shard and forgotten in another
        // can be one short of zero: read the wrapped sum as signed.
        usize::try_from(sum as i64).unwrap_or(0)
    }

    pub fn evictions(&self) -> Evictions {
        self.shards.iter().fold(Evictions::default(), |sum, s| {
            sum.add(Evictions {
                expired: s.expired.load(Ordering::Relaxed),
                cold: s.cold.load(Ordering::Relaxed),
                in_use: s.in_use.load(Ordering::Relaxed),
            })
        })
    }

    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.shards)
    }
}

/// Sums two tables' evictions.
pub(super) fn sum(a: Evictions, b: Evictions) -> Evictions {
    a.add(b)
}
