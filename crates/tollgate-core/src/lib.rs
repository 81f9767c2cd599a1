//! The decision core of Tollgate.
#![forbid(unsafe_code)]

pub mod algorithm;
pub mod conformance;
pub mod decision;
pub mod limiter;
pub mod outcome;
pub mod policy;
pub mod store;
pub mod subject;
pub mod time;

pub use decision::{Code, Decision, Headers, LimitStatus};
pub use limiter::{Limiter, Mode};
pub use outcome::Outcome;
pub use policy::Policy;
pub use store::{Check, MemoryStore, MemoryStoreConfig, Store, StoreError};
pub use subject::Subject;
