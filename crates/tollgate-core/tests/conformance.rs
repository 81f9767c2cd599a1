//! The conformance vectors on the memory store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use tollgate_core::MemoryStore;
use tollgate_core::algorithm::AlgorithmKind;
use tollgate_core::conformance::{load_all, run_case};

#[test]
fn every_algorithm_has_vectors() {
    let files = load_all().unwrap();
    for kind in AlgorithmKind::ALL {
        assert!(
            files
                .iter()
                .any(|f| f.algorithm == kind.name() && !f.cases.is_empty()),
            "no vectors for {}",
            kind.name()
        );
    }
}

#[test]
fn memory_store_passes_every_vector() {
    let store = MemoryStore::default();
    let mut failures = Vec::new();
    let mut steps = 0;
    for file in load_all().unwrap() {
        for (i, case) in file.cases.iter().enumerate() {
            steps += case.steps.len();
            let key = format!("{}-{i}", file.algorithm);
            failures.extend(common::block_on(run_case(&store, &file, case, &key)));
        }
    }
    assert!(steps > 80, "only {steps} steps");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
