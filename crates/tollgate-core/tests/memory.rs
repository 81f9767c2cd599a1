//! Memory per idle counter, measured on a full store.
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
use tollgate_core::time::NANOS_PER_SEC as S;
use tollgate_core::{Check, MemoryStore, MemoryStoreConfig, Policy, Store};

/// Makes one counter per key of `algorithm` for twice the store's capacity, so that the
/// second half evicts; checks that every key got a counter, that an idle counter costs at
/// most `max_bytes`, and that once all are idle a sweep counts them.
fn fill_and_measure(algorithm: &str, max_bytes: f64) {
    let policy = Policy::from_yaml(&format!(
        "rules: [{{name: r, key: '{{user}}', algorithm: {algorithm}, limit: 10, period: 1m}}]"
    ))
    .unwrap();
    let rule = &policy.rules()[0];
    let store = MemoryStore::new(MemoryStoreConfig { capacity: 100_000 });
    let bytes = || store.table_bytes();
    for i in 0..store.capacity() * 2 {
        let check = Check {
            rule,
            key: format!("user:{i}").into(),
            cost: 1,
        };
        let o = block_on(store.acquire(std::slice::from_ref(&check), NOW)).unwrap();
        assert!(o[0].allowed, "{algorithm}: user {i}");
    }
    let live = store.live(NOW);
    let resident = store.resident_counters();
    assert_eq!(live, resident, "{algorithm}");
    assert!(
        live >= store.capacity(),
        "{algorithm}: {live} live of {} sized for",
        store.capacity()
    );
    // Every key past what the table holds evicted a cold counter.
    let evicted = store.evictions();
    assert_eq!(
        evicted.cold as usize,
        store.capacity() * 2 - live,
        "{algorithm}"
    );
    assert_eq!(evicted.in_use, 0, "{algorithm}");
    let per_counter = bytes() as f64 / live as f64;
    println!(
        "{algorithm}: {live} idle counters in {} bytes: {per_counter:.1} B each",
        bytes()
    );
    assert!(
        per_counter <= max_bytes,
        "{algorithm}: {per_counter:.1} bytes per idle counter"
    );
    assert_eq!(store.sweep(NOW + 3_600 * S), live);
    assert_eq!(store.live(NOW + 3_600 * S), 0);
    assert_eq!(store.live_estimate(NOW + 3_600 * S), 0);
}

const NOW: u64 = 1_767_571_200 * S;

#[test]
fn an_idle_gcra_counter_costs_at_most_19_bytes() {
    fill_and_measure("gcra", 19.0);
}

#[test]
fn an_idle_counter_of_any_other_algorithm_costs_at_most_64_bytes() {
    fill_and_measure("fixed_window", 64.0);
}
