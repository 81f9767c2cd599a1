//! Tollgate's records, in SQLite (by default, a file beside the configuration) or
//! PostgreSQL (`postgres://…`), through one code base with migrations for each.
//!
//! So far: API keys — created with a secret shown once, stored as an HMAC-SHA-256 under
//! the server's secret, listed, updated, revoked, rotated with a grace period, and verified.

mod db;
pub mod key;
mod keys;

use thiserror::Error;

pub use db::Registry;
pub use key::KeySecret;
pub use keys::{KeyFilter, KeyPatch, KeyRecord, KeyStatus, NewKey, VerifyError};

/// Why the registry could not do something.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrating the schema failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The request was not valid.
    #[error("{0}")]
    Invalid(String),
}
