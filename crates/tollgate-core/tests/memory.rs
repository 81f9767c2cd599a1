//! Memory per idle counter, measured on a full store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::block_on;
use tollgate_core::time::NANOS_PER_SEC as S;
use tollgate_core::{Check, MemoryStore, MemoryStoreConfig, Policy, Store, StoreError};

#[test]
fn an_idle_counter_costs_at_most_64_bytes() {
    let policy =
        Policy::from_yaml("rules: [{name: r, key: '{user}', limit: 10, period: 1m}]").unwrap();
    let rule = &policy.rules()[0];
    let store = MemoryStore::new(MemoryStoreConfig { capacity: 100_000 });
    let now = 1_767_571_200 * S;
    let mut full = 0;
    for i in 0..store.capacity() * 2 {
        let check = Check {
            rule,
            key: format!("user:{i}").into(),
            cost: 1,
        };
        match block_on(store.acquire(std::slice::from_ref(&check), now)) {
            Ok(_) => {}
            Err(StoreError::Full { .. }) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let live = store.live(now);
    assert!(full > 0, "the store must refuse past its capacity");
    assert!(
        live >= store.capacity(),
        "{live} live of {} sized for",
        store.capacity()
    );
    let per_counter = store.table_bytes() as f64 / live as f64;
    println!(
        "{live} idle counters in {} bytes: {per_counter:.1} B each",
        store.table_bytes()
    );
    assert!(
        per_counter <= 64.0,
        "{per_counter:.1} bytes per idle counter"
    );

    // Once idle, a sweep returns every counter.
    assert_eq!(store.sweep(now + 3_600 * S), live);
    assert_eq!(store.live(now + 3_600 * S), 0);
}
