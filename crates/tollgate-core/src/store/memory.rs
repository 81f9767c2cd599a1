//! The in-process store: sharded hash tables of fixed-size counters.
//!
//! Counters are found by a 128-bit keyed digest of (rule identity, key), so an entry holds
//! no string: 16 bytes of digest, 8 of expiry and 24 of state — 48 bytes in a table that is
//! allocated once, up front, at 7/8 load. Each shard has its own lock on its own cache
//! line; a decision locks only the shards of its checks, in ascending order, so decisions
//! over several limits cannot deadlock and still apply as a unit.
//!
//! Capacity is bounded. When a shard is full, entries past their expiry are swept; if that
//! frees nothing the store refuses the new counter with [`StoreError::Full`] rather than
//! evicting a live one — evicting would let a flood of new keys reset other clients'
//! counters. The refusal goes through the rule's `on_store_error` policy.

use std::hash::BuildHasher;

use crossbeam_utils::CachePadded;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use super::{Check, Outcomes, Store, StoreError};
use crate::algorithm::{Concurrency, State};
use crate::outcome::Outcome;
use crate::policy::Rule;
use crate::time::{NANOS_PER_MILLI, Nanos};

/// Marks the digest of a counter's penalty entry.
const BLOCK_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// A full shard sweeps at most this often, so a store full of live counters does not scan
/// on every refused insert.
const SWEEP_BACKOFF: Nanos = 100 * NANOS_PER_MILLI;

/// Sizing of a [`MemoryStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreConfig {
    /// The most live counters (rounded up so each shard fills its table exactly).
    pub capacity: usize,
    /// Number of shards (rounded up to a power of two).
    pub shards: usize,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        MemoryStoreConfig {
            capacity: 1_000_000,
            shards: (cpus * 16).clamp(16, 1024),
        }
    }
}

struct Entry {
    k0: u64,
    k1: u64,
    expires: Nanos,
    state: State,
}

struct Shard {
    table: HashTable<Entry>,
    next_lease: u64,
    swept_at: Option<Nanos>,
}

/// Counters in memory: thread-safe without a global lock, bounded, expiring.
pub struct MemoryStore {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    mask: usize,
    seeds: [u64; 2],
    per_shard: usize,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryStoreConfig::default())
    }
}

fn random_seed() -> u64 {
    std::hash::RandomState::new().hash_one(0x5eed_u64)
}

impl MemoryStore {
    /// A store sized by `config`. Its tables are allocated now; nothing grows later.
    pub fn new(config: MemoryStoreConfig) -> Self {
        let shards = config.shards.clamp(1, 1 << 16).next_power_of_two();
        let wanted = config.capacity.max(1).div_ceil(shards);
        // hashbrown keeps 7/8 of a power-of-two of buckets usable: fill exactly that.
        let buckets = (wanted.saturating_mul(8).div_ceil(7))
            .next_power_of_two()
            .max(8);
        let per_shard = buckets / 8 * 7;
        let shards = (0..shards)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard {
                    table: HashTable::with_capacity(per_shard),
                    next_lease: 0,
                    swept_at: None,
                }))
            })
            .collect::<Box<[_]>>();
        MemoryStore {
            mask: shards.len() - 1,
            shards,
            seeds: [random_seed(), random_seed()],
            per_shard,
        }
    }

    /// The most live counters this store holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Counters held, including expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().table.len()).sum()
    }

    /// Whether the store holds no counter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the tables (boxed log and lease states not included).
    pub fn table_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().table.allocation_size())
            .sum::<usize>()
            + std::mem::size_of_val(&*self.shards)
    }

    /// Drops every counter idle at `now`; returns how many. Run it now and then (the server
    /// does every few seconds) so memory follows the live set.
    pub fn sweep(&self, now: Nanos) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.lock();
                shard.swept_at = Some(now);
                let before = shard.table.len();
                shard.table.retain(|e| e.expires > now);
                before - shard.table.len()
            })
            .sum()
    }

    #[inline]
    fn digest(&self, rule: &Rule, key: &str) -> (u64, u64) {
        let seed = rule.seed();
        (
            FixedState::with_seed(self.seeds[0] ^ seed).hash_one(key),
            FixedState::with_seed(self.seeds[1] ^ seed).hash_one(key),
        )
    }

    #[inline]
    fn shard_of(&self, k0: u64) -> usize {
        // Bits the table does not use: hashbrown takes the top 7 as tags and the low bits
        // as bucket numbers.
        (k0 >> 32) as usize & self.mask
    }

    fn acquire_one(&self, check: &Check<'_>, now: Nanos) -> Result<Outcome, StoreError> {
        let (k0, k1) = self.digest(check.rule, &check.key);
        let mut guard = self.shards[self.shard_of(k0)].lock();
        let shard = &mut *guard;
        if let Some(blocked) = shard.blocked(check.rule, k0, k1, now) {
            return Ok(blocked);
        }
        let limit = &check.rule.limit;
        let outcome = match shard.table.find_mut(k0, |e| e.k0 == k0 && e.k1 == k1) {
            Some(entry) => {
                if entry.expires <= now {
                    entry.state = State::Fresh;
                }
                let mut outcome = limit.check(&entry.state, now, check.cost);
                if outcome.allowed && check.cost > 0 {
                    shard.next_lease += 1;
                    outcome.lease = lease_of(check, shard.next_lease);
                    limit.commit(&mut entry.state, now, check.cost, shard.next_lease);
                    entry.expires = limit.idle_at(&entry.state);
                }
                outcome
            }
            None => {
                let mut outcome = limit.check(&State::Fresh, now, check.cost);
                if outcome.allowed && check.cost > 0 {
                    if !shard.room(1, now, self.per_shard) {
                        return Err(StoreError::Full {
                            capacity: self.capacity(),
                        });
                    }
                    shard.next_lease += 1;
                    outcome.lease = lease_of(check, shard.next_lease);
                    let mut state = State::Fresh;
                    limit.commit(&mut state, now, check.cost, shard.next_lease);
                    let expires = limit.idle_at(&state);
                    shard.table.insert_unique(
                        k0,
                        Entry {
                            k0,
                            k1,
                            expires,
                            state,
                        },
                        |e| e.k0,
                    );
                }
                outcome
            }
        };
        if !outcome.allowed {
            shard.penalise(check.rule, k0, k1, now, self.per_shard);
        }
        Ok(outcome)
    }

    /// Applies several checks as a unit; with `commit` false, only reports.
    fn acquire_many(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        commit: bool,
    ) -> Result<Outcomes, StoreError> {
        let keys: SmallVec<[(u64, u64, usize); 4]> = checks
            .iter()
            .map(|c| {
                let (k0, k1) = self.digest(c.rule, &c.key);
                (k0, k1, self.shard_of(k0))
            })
            .collect();
        let mut order: SmallVec<[usize; 4]> = keys.iter().map(|k| k.2).collect();
        order.sort_unstable();
        order.dedup();
        // Ascending order: two decisions sharing shards cannot wait on each other.
        let mut guards: SmallVec<[MutexGuard<'_, Shard>; 4]> =
            order.iter().map(|&i| self.shards[i].lock()).collect();
        let slot = |shard: usize| order.binary_search(&shard).unwrap_or(0);

        let mut outcomes = Outcomes::with_capacity(checks.len());
        let mut inserts: SmallVec<[usize; 4]> = SmallVec::from_elem(0, guards.len());
        for (check, &(k0, k1, s)) in checks.iter().zip(&keys) {
            let shard = &mut guards[slot(s)];
            if let Some(blocked) = shard.blocked(check.rule, k0, k1, now) {
                outcomes.push(blocked);
                continue;
            }
            let state = match shard.table.find(k0, |e| e.k0 == k0 && e.k1 == k1) {
                Some(e) if e.expires > now => &e.state,
                Some(_) => &State::Fresh,
                None => {
                    inserts[slot(s)] += 1;
                    &State::Fresh
                }
            };
            outcomes.push(check.rule.limit.check(state, now, check.cost));
        }

        if !outcomes.iter().all(|o| o.allowed) {
            // Nothing is consumed: the limits that would have admitted report their state
            // as it stays.
            for ((check, &(k0, k1, s)), o) in checks.iter().zip(&keys).zip(outcomes.iter_mut()) {
                let shard = &mut guards[slot(s)];
                if o.allowed {
                    let state = match shard.table.find(k0, |e| e.k0 == k0 && e.k1 == k1) {
                        Some(e) if e.expires > now => &e.state,
                        _ => &State::Fresh,
                    };
                    *o = check.rule.limit.check(state, now, 0);
                } else if commit {
                    shard.penalise(check.rule, k0, k1, now, self.per_shard);
                }
            }
            return Ok(outcomes);
        }
        if !commit {
            return Ok(outcomes);
        }
        for (guard, &needed) in guards.iter_mut().zip(&inserts) {
            if !guard.room(needed, now, self.per_shard) {
                return Err(StoreError::Full {
                    capacity: self.capacity(),
                });
            }
        }
        for ((check, &(k0, k1, s)), outcome) in checks.iter().zip(&keys).zip(outcomes.iter_mut()) {
            if check.cost == 0 {
                continue;
            }
            let shard = &mut *guards[slot(s)];
            shard.next_lease += 1;
            let lease = shard.next_lease;
            outcome.lease = lease_of(check, lease);
            let limit = &check.rule.limit;
            match shard.table.find_mut(k0, |e| e.k0 == k0 && e.k1 == k1) {
                Some(entry) => {
                    if entry.expires <= now {
                        entry.state = State::Fresh;
                    }
                    limit.commit(&mut entry.state, now, check.cost, lease);
                    entry.expires = limit.idle_at(&entry.state);
                }
                None => {
                    let mut state = State::Fresh;
                    limit.commit(&mut state, now, check.cost, lease);
                    let expires = limit.idle_at(&state);
                    shard.table.insert_unique(
                        k0,
                        Entry {
                            k0,
                            k1,
                            expires,
                            state,
                        },
                        |e| e.k0,
                    );
                }
            }
        }
        Ok(outcomes)
    }
}

fn lease_of(check: &Check<'_>, id: u64) -> Option<u64> {
    matches!(check.rule.limit, crate::algorithm::Limit::Concurrency(_)).then_some(id)
}

impl Shard {
    /// The penalty outcome when counter (k0, k1) of `rule` is blocked at `now`.
    #[inline]
    fn blocked(&self, rule: &Rule, k0: u64, k1: u64, now: Nanos) -> Option<Outcome> {
        rule.block_for?;
        let bk = k1 ^ BLOCK_SALT;
        let entry = self.table.find(k0, |e| e.k0 == k0 && e.k1 == bk)?;
        let State::Blocked { until } = entry.state else {
            return None;
        };
        (until > now).then(|| {
            let wait = until - now;
            Outcome {
                blocked: true,
                ..Outcome::deny(rule.limit.quota(), 0, wait, Some(wait))
            }
        })
    }

    /// Records a denial's penalty, when the rule has one.
    fn penalise(&mut self, rule: &Rule, k0: u64, k1: u64, now: Nanos, per_shard: usize) {
        let Some(block_for) = rule.block_for else {
            return;
        };
        let until = now.saturating_add(block_for);
        let bk = k1 ^ BLOCK_SALT;
        let state = State::Blocked { until };
        match self.table.find_mut(k0, |e| e.k0 == k0 && e.k1 == bk) {
            Some(e) => {
                if e.expires <= now {
                    e.state = state;
                    e.expires = until;
                }
            }
            None => {
                if self.room(1, now, per_shard) {
                    let entry = Entry {
                        k0,
                        k1: bk,
                        expires: until,
                        state,
                    };
                    self.table.insert_unique(k0, entry, |e| e.k0);
                }
            }
        }
    }

    /// Whether `needed` more entries fit, sweeping expired ones first when full.
    fn room(&mut self, needed: usize, now: Nanos, per_shard: usize) -> bool {
        if self.table.len() + needed <= per_shard {
            return true;
        }
        let due = self
            .swept_at
            .is_none_or(|at| now >= at.saturating_add(SWEEP_BACKOFF) || now < at);
        if due {
            self.swept_at = Some(now);
            self.table.retain(|e| e.expires > now);
        }
        self.table.len() + needed <= per_shard
    }
}

impl Store for MemoryStore {
    fn acquire(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send {
        let result = match checks {
            [] => Ok(Outcomes::new()),
            [one] => self.acquire_one(one, now).map(|o| {
                let mut v = Outcomes::new();
                v.push(o);
                v
            }),
            many => self.acquire_many(many, now, true),
        };
        std::future::ready(result)
    }

    fn preview(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send {
        std::future::ready(self.acquire_many(checks, now, false))
    }

    fn release(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let (k0, k1) = self.digest(rule, key);
        let mut shard = self.shards[self.shard_of(k0)].lock();
        let released = match shard.table.find_mut(k0, |e| e.k0 == k0 && e.k1 == k1) {
            Some(entry) => {
                let done = Concurrency::release(&mut entry.state, now, lease);
                entry.expires = rule.limit.idle_at(&entry.state);
                done
            }
            None => false,
        };
        std::future::ready(Ok(released))
    }

    fn reset(&self, rule: &Rule, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (k0, k1) = self.digest(rule, key);
        let mut shard = self.shards[self.shard_of(k0)].lock();
        for k in [k1, k1 ^ BLOCK_SALT] {
            if let Ok(e) = shard.table.find_entry(k0, |e| e.k0 == k0 && e.k1 == k) {
                e.remove();
            }
        }
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }
}
