//! Concurrency limit: at most `limit` units in flight, held as leases.
//!
//! An admitted check takes a lease of `cost` units that the caller returns with
//! [`Store::release`](crate::Store::release). A lease also ends by itself after `lease_ttl`,
//! so a caller that crashed cannot hold capacity forever.

use super::State;
use crate::outcome::Outcome;
use crate::time::Nanos;

/// Concurrency parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    /// Units in flight at most.
    pub limit: u64,
    /// How long a lease lives unless released.
    pub lease_ttl: Nanos,
}

/// One lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Its id, assigned by the store.
    pub id: u64,
    /// Units it holds.
    pub weight: u64,
    /// When it ends by itself.
    pub expires: Nanos,
}

/// The leases of one counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    items: Vec<Lease>,
}

impl Concurrency {
    /// At most `limit` units in flight, each lease living at most `lease_ttl`.
    pub fn new(limit: u64, lease_ttl: Nanos) -> Self {
        Concurrency {
            limit: limit.max(1),
            lease_ttl: lease_ttl.max(1),
        }
    }

    fn live<'a>(state: &'a State, now: Nanos) -> impl Iterator<Item = &'a Lease> + 'a {
        let items = match state {
            State::Leases(l) => Some(l.items.iter()),
            _ => None,
        };
        items.into_iter().flatten().filter(move |l| l.expires > now)
    }

    pub(crate) fn check(&self, state: &State, now: Nanos, cost: u64) -> Outcome {
        let used = Self::live(state, now).fold(0u64, |s, l| s.saturating_add(l.weight));
        let last_end = Self::live(state, now).map(|l| l.expires).max();
        if cost <= self.limit && used.saturating_add(cost) <= self.limit {
            let end = if cost > 0 {
                Some(now.saturating_add(self.lease_ttl))
            } else {
                None
            };
            let reset = end.max(last_end).map_or(0, |e| e.saturating_sub(now));
            let left = self.limit.saturating_sub(used.saturating_add(cost));
            return Outcome::allow(self.limit, left, reset);
        }
        let retry = (cost <= self.limit).then(|| {
            let mut ends: Vec<&Lease> = Self::live(state, now).collect();
            ends.sort_unstable_by_key(|l| l.expires);
            let mut held = used;
            let mut at = now;
            for l in ends {
                if held.saturating_add(cost) <= self.limit {
                    break;
                }
                held = held.saturating_sub(l.weight);
                at = l.expires;
            }
            at.saturating_sub(now)
        });
        let reset = last_end.map_or(0, |e| e.saturating_sub(now));
        Outcome::deny(self.limit, self.limit.saturating_sub(used), reset, retry)
    }

    pub(crate) fn commit(&self, state: &mut State, now: Nanos, cost: u64, lease: u64) {
        if !matches!(state, State::Leases(_)) {
            *state = State::Leases(Box::default());
        }
        if let State::Leases(l) = state {
            l.items.retain(|l| l.expires > now);
            l.items.push(Lease {
                id: lease,
                weight: cost,
                expires: now.saturating_add(self.lease_ttl),
            });
        }
    }

    /// Ends lease `id`; false when it had already ended.
    pub(crate) fn release(state: &mut State, now: Nanos, id: u64) -> bool {
        let State::Leases(l) = state else {
            return false;
        };
        let found = l.items.iter().any(|x| x.id == id && x.expires > now);
        l.items.retain(|x| x.id != id && x.expires > now);
        found
    }

    /// Gives lease `id` a new `lease_ttl` from `now`, for work that runs longer than one;
    /// false when it had already ended (a lease that ran out stays ended).
    pub(crate) fn renew(&self, state: &mut State, now: Nanos, id: u64) -> bool {
        let State::Leases(l) = state else {
            return false;
        };
        l.items.retain(|x| x.expires > now);
        let found = l.items.iter_mut().find(|x| x.id == id);
        if let Some(lease) = found {
            lease.expires = now.saturating_add(self.lease_ttl);
            true
        } else {
            false
        }
    }

    pub(crate) fn idle_at(&self, state: &State) -> Nanos {
        match state {
            State::Leases(l) => l.items.iter().map(|l| l.expires).max().unwrap_or(0),
            _ => 0,
        }
    }
}
