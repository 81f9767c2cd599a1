//! The core's conformance vectors, run on a real Redis single node and a real Cluster.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::time::Duration;

use tollgate_core::conformance::{load_all, run_case};
use tollgate_redis::{Clock, RedisConfig, RedisStore, Topology};
use tollgate_testkit::{Cluster, Single};

fn store(topology: Topology) -> RedisStore {
    RedisStore::new(RedisConfig {
        clock: Clock::Caller,
        timeout: Duration::from_secs(2),
        ..RedisConfig::new(topology)
    })
    .unwrap()
}

async fn run_all(store: &RedisStore) -> (usize, Vec<String>) {
    let files = load_all().unwrap();
    let mut cases = 0;
    let mut failures = Vec::new();
    for file in &files {
        for (i, case) in file.cases.iter().enumerate() {
            cases += 1;
            let key = format!("{}-{i}", file.algorithm);
            failures.extend(run_case(store, file, case, &key).await);
        }
    }
    (cases, failures)
}

#[tokio::test]
async fn vectors_pass_on_a_single_node() {
    let redis = Single::start().unwrap();
    let store = store(Topology::Single { url: redis.url() });
    let (cases, failures) = run_all(&store).await;
    assert!(cases >= 7, "{cases} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn vectors_pass_on_a_cluster() {
    let cluster = Cluster::start().unwrap();
    let store = store(Topology::Cluster {
        urls: cluster.urls(),
    });
    let (cases, failures) = run_all(&store).await;
    assert!(cases >= 7, "{cases} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
