//! Tollgate's records, in SQLite (by default, a file beside the configuration) or
//! PostgreSQL (`postgres://…`), through one code base with migrations for each.
//!
//! It holds API keys (created with a secret shown once, stored as an HMAC-SHA-256 under the
//! server's secret, listed, updated, revoked, rotated with a grace period, verified), usage
//! events with their minute, hour and day rollups, violations, and the audit log of admin
//! changes, each pruned by a configured age.

mod audit;
mod db;
pub mod key;
mod keys;
mod usage;

use thiserror::Error;

pub use audit::{AuditEntry, AuditFilter, AuditRecord};
pub use db::Registry;
pub use key::KeySecret;
pub use keys::{KeyFilter, KeyPatch, KeyRecord, KeyStatus, NewKey, VerifyError};
pub use usage::{
    Granularity, Pruned, Retention, UsageBucket, UsageEvent, Violation, ViolationFilter,
    ViolationRecord,
};

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
