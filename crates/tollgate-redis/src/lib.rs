//! The Redis counter store of Tollgate.
//!
//! [`RedisStore`] implements the core's [`Store`](tollgate_core::Store) over a single
//! Redis server, a Sentinel-managed primary or a Cluster. Every algorithm runs inside
//! Redis as Lua (the files under `scripts/`), so a decision is one atomic call, and reads
//! Redis's own clock so instances with skewed clocks agree. A circuit breaker and a
//! timeout bound every call; when the store fails, the core's limiter answers by each
//! rule's fail policy.
//!
//! ```no_run
//! use tollgate_redis::{RedisConfig, RedisStore, Topology};
//!
//! let store = RedisStore::new(RedisConfig::new(Topology::Single {
//!     url: "redis://127.0.0.1:6379".into(),
//! }))?;
//! # Ok::<(), tollgate_core::StoreError>(())
//! ```

mod approx;
mod batch;
mod breaker;
mod conn;
mod keys;
mod memory;
mod near;
mod script;
mod store;

pub use breaker::{BreakerConfig, BreakerState};
pub use conn::Topology;
pub use memory::{MemoryPolicy, MemoryWarning};
pub use script::unsupported;
pub use store::{Clock, Consistency, RedisConfig, RedisStore};
