//! Engines and servers for the tests: a real listener on a free loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use tollgate_core::{MemoryStore, Policy};
use tollgate_engine::{Engine, EngineConfig};

/// An engine on the memory store under the policy `yaml`.
pub fn engine(yaml: &str) -> Arc<Engine<MemoryStore>> {
    let policy = Policy::from_yaml(yaml).unwrap();
    Arc::new(Engine::new(
        MemoryStore::default(),
        policy,
        EngineConfig::default(),
    ))
}

/// Serves `router` on 127.0.0.1 with the peer's address known to handlers and layers.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A client whose connections come from `from` (any address of 127.0.0.0/8).
pub fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}
