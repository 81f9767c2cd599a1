//! The one decision path of Tollgate. Every door — `POST /v1/check`, forward-auth, Envoy's
//! rate limit service, the reverse proxy, the tower Layer — translates its wire form into a
//! [`Request`] and calls [`Engine::decide`]; the engine verifies the presented key, plans
//! the checks, applies them in the store and sends what the decision leaves behind (metrics,
//! usage events, violations) off the hot path. No door plans, acquires or records by itself.
//!
//! ```
//! use tollgate_core::{MemoryStore, Mode, Policy, Subject};
//! use tollgate_engine::{Attributes, Engine, EngineConfig, Request, Scope};
//!
//! # tokio_test_block_on(async {
//! let policy = Policy::from_yaml("rules: [{name: per-user, key: '{user}', limit: 1, period: 1m}]").unwrap();
//! let engine = Engine::new(MemoryStore::default(), policy, EngineConfig::default());
//! let subject = Subject::new().with("user", "alice").unwrap();
//! let request = |s: &Subject| Request::new(Attributes::Subject(s.clone()));
//! let mut scope = Scope::default();
//! assert!(engine.decide(&mut scope, request(&subject)).await.decision.allowed);
//! let mut scope = Scope::default();
//! assert!(!engine.decide(&mut scope, request(&subject)).await.decision.allowed);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

pub mod door;
pub mod effects;
mod engine;
pub mod identity;
pub mod keys;
pub mod lease;
mod overrides;
mod record;
pub use record::LATENCY;
pub mod request;
mod scope;

pub use engine::{Engine, EngineConfig, TRACE};
pub use keys::KeyEntry;
pub use lease::{Lease, LeaseError};
pub use request::{Attributes, DescriptorIn, LimitOverride, Request, Verdict};
pub use scope::Scope;
