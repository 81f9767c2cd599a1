//! The decision core of Tollgate.
#![forbid(unsafe_code)]

pub mod algorithm;
pub mod outcome;
pub mod policy;
pub mod store;
pub mod subject;
pub mod time;

pub use outcome::Outcome;
pub use store::{Check, Store, StoreError};
