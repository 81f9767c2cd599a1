//! A flood of one-time keys against a full memory store: limiting must not turn off. The
//! keys in use keep their counters, every new key is decided by the store, and memory
//! stays within the tables.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::block_on;
use tollgate_core::time::{NANOS_PER_SEC as S, Nanos};
use tollgate_core::{Check, MemoryStore, MemoryStoreConfig, Outcome, Policy, Store};

const T0: Nanos = 1_767_571_200 * S;
const US: Nanos = 1_000;
const CAPACITY: usize = 10_000;
/// One-time keys: fifty times what each table holds.
const FLOOD: usize = 50 * CAPACITY;

/// A per-user fixed window and a per-IP sliding window, as attacked in the issue, with a
/// generous per-user GCRA rule beside them so that every decision touches both tables;
/// and a strict GCRA rule for one key alone.
const POLICY: &str = "rules: [\
    {name: per-user, key: 'user:{user}', algorithm: fixed_window, limit: 5, period: 1m},\
    {name: per-ip, key: 'ip:{ip}', algorithm: sliding_window, limit: 100, period: 1m},\
    {name: per-user-rate, key: 'user:{user}', limit: 1000, period: 1m},\
    {name: strict, key: 'user:{user}', limit: 3, period: 1m}]";

struct Flood {
    policy: Policy,
    store: MemoryStore,
}

impl Flood {
    /// The three-limit decision of a request by `user` from `ip`.
    fn request(&self, user: &str, ip: &str, now: Nanos) -> Vec<Outcome> {
        let rules = self.policy.rules();
        let checks = [
            Check {
                rule: &rules[0],
                key: format!("user:{user}").into(),
                cost: 1,
            },
            Check {
                rule: &rules[1],
                key: format!("ip:{ip}").into(),
                cost: 1,
            },
            Check {
                rule: &rules[2],
                key: format!("user:{user}").into(),
                cost: 1,
            },
        ];
        // An error here is what a rule's `on_store_error` would have answered: degraded.
        block_on(self.store.acquire(&checks, now))
            .expect("decided by the store")
            .to_vec()
    }

    /// A check of the strict GCRA rule alone.
    fn strict(&self, user: &str, now: Nanos) -> Outcome {
        let check = Check {
            rule: &self.policy.rules()[3],
            key: format!("user:{user}").into(),
            cost: 1,
        };
        block_on(self.store.acquire(std::slice::from_ref(&check), now))
            .expect("decided by the store")[0]
    }

    /// Whether both keys driven to their limits are still denied at `now`.
    fn both_denied(&self, now: Nanos) -> bool {
        let alice = self.request("alice", "10.0.0.1", now);
        !alice[0].allowed && !self.strict("carol", now).allowed
    }
}

/// Resident memory of this process, in bytes (Linux; 0 elsewhere).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[test]
fn keys_at_their_limit_stay_limited_through_a_flood_of_fifty_times_capacity() {
    let rss_before = rss();
    let f = Flood {
        policy: Policy::from_yaml(POLICY).unwrap(),
        store: MemoryStore::new(MemoryStoreConfig { capacity: CAPACITY }),
    };
    // Alice uses up her window (five a minute); Carol her GCRA limit (three a minute).
    for _ in 0..5 {
        assert!(f.request("alice", "10.0.0.1", T0)[0].allowed);
    }
    for _ in 0..3 {
        assert!(f.strict("carol", T0).allowed);
    }
    assert!(f.both_denied(T0));
    let bytes = f.store.table_bytes();

    // Six seconds of requests, each from a new user and a new IP.
    let mut now = T0;
    for i in 0..FLOOD {
        now = T0 + i as u64 * 12 * US;
        let o = f.request(&format!("u{i}"), &format!("ip{i}"), now);
        assert!(o.iter().all(|o| o.allowed), "flood request {i}: {o:?}");
        if i % 10_000 == 0 {
            assert!(f.both_denied(now), "during the flood, request {i}");
        }
    }
    let evicted = f.store.evictions();
    println!("{evicted:?}, {} resident", f.store.resident_counters());
    // The flood evicted its own counters only.
    assert!(evicted.cold > 0);
    assert_eq!(evicted.in_use, 0);
    // The gauge reads a full store, not an empty one.
    assert!(f.store.live_estimate(now) >= CAPACITY);

    // After the flood: still denied, and a new subject is decided by the store.
    let after = now + S;
    assert!(f.both_denied(after));
    let bob = f.request("bob", "10.0.0.2", after);
    assert!(bob.iter().all(|o| o.allowed), "{bob:?}");
    assert_eq!(bob[0].remaining, 4);
    assert!(f.strict("bob", after).allowed);

    // Memory: the tables never grew, and nothing else held on to the flood.
    assert_eq!(f.store.table_bytes(), bytes);
    let grown = rss().saturating_sub(rss_before);
    println!("tables {bytes} bytes; resident memory grew by {grown} bytes");
    if cfg!(target_os = "linux") {
        assert!(
            grown <= bytes + (8 << 20),
            "grew {grown} for tables of {bytes}"
        );
    }
    // Once their minute has passed, both are admitted again.
    assert!(f.request("alice", "10.0.0.1", T0 + 61 * S)[0].allowed);
    assert!(f.strict("carol", T0 + 61 * S).allowed);
}

mod at_its_limit {
    use super::*;
    use proptest::prelude::*;
    use tollgate_core::algorithm::State;

    /// What happens between two checks of the tracked key.
    #[derive(Debug, Clone)]
    enum Arrival {
        /// A key never seen before.
        New,
        /// One of a few other keys, which may come back.
        Regular(u8),
        /// The tracked key itself, earlier than it must.
        Tracked,
    }

    fn arrivals() -> impl Strategy<Value = Vec<(u64, Arrival)>> {
        let arrival = prop_oneof![
            14 => Just(Arrival::New),
            4 => (0u8..8).prop_map(Arrival::Regular),
            1 => Just(Arrival::Tracked),
        ];
        // Gaps in thousandths of the period.
        prop::collection::vec((0u64..20, arrival), 500..3_000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// A key driven to its limit, then checked at least once per half period among any
        /// arrival of other keys on a store far too small for them, is decided exactly as
        /// on a store that never evicts: eviction never admits it early.
        #[test]
        fn a_key_at_its_limit_touched_every_half_period_is_never_admitted_early(
            algorithm in prop::sample::select(vec![
                "gcra", "token_bucket", "fixed_window", "sliding_window", "sliding_log",
            ]),
            limit in 1u64..10,
            period_s in 1u64..60,
            arr in arrivals(),
        ) {
            let policy = Policy::from_yaml(&format!(
                "rules: [{{name: p, key: k, algorithm: {algorithm}, limit: {limit}, \
                 period: {period_s}s}}]"
            ))
            .unwrap();
            let rule = &policy.rules()[0];
            // Some 500 slots, for thousands of keys.
            let store = MemoryStore::new(MemoryStoreConfig { capacity: 64 });
            let period = period_s * S;
            let check = |key: &str, now: Nanos| {
                let c = Check { rule, key: key.to_owned().into(), cost: 1 };
                block_on(store.acquire(std::slice::from_ref(&c), now)).unwrap()[0].allowed
            };
            // The tracked key's counter on a store that never evicts.
            let mut exact = State::Fresh;
            let mut tracked = |now: Nanos| {
                let want = rule.limit.transition(&mut exact, now, 1, 0).allowed;
                (check("tracked", now), want)
            };
            let mut now = T0;
            let mut denied = false;
            for _ in 0..=limit {
                let (got, want) = tracked(now);
                prop_assert_eq!(got, want);
                denied |= !got;
            }
            prop_assert!(denied, "driven to its limit");
            let mut last = now;
            for (i, (gap, arrival)) in arr.iter().enumerate() {
                let next = now + gap * period / 1_000;
                // At least once per half period.
                while next - last > period / 2 {
                    now = last + period / 2;
                    let (got, want) = tracked(now);
                    prop_assert_eq!(got, want, "touch before arrival {}", i);
                    last = now;
                }
                now = next;
                match arrival {
                    Arrival::New => {
                        check(&format!("new{i}"), now);
                    }
                    Arrival::Regular(r) => {
                        check(&format!("regular{r}"), now);
                    }
                    Arrival::Tracked => {
                        let (got, want) = tracked(now);
                        prop_assert_eq!(got, want, "arrival {}", i);
                        last = now;
                    }
                }
            }
            // The store was too small: keys were evicted, none of them in use.
            prop_assert!(store.evictions().cold + store.evictions().expired > 0);
        }
    }
}
