//! Tollgate's records, in SQLite (by default, a file beside the configuration) or
//! PostgreSQL (`postgres://…`), through one code base with migrations for each.
//!
//! It holds API keys (created with a secret shown once, stored as an HMAC-SHA-256 under the
//! server's secret, listed, updated, revoked, rotated with a grace period, verified), usage
//! events with their minute, hour and day rollups, violations, and the audit log of admin
//! changes, each pruned by a configured age; and what a business runs on them: owners'
//! contacts, billing usage and closed periods' records, alert states and history, a job
//! queue written beside what causes its jobs, the reverse proxy's dead letters, and leases that pick one leader per fleet.

mod alerts;
mod audit;
mod billing;
mod db;
mod dead_letters;
mod jobs;
pub mod key;
mod keys;
mod lease;
mod owners;
mod sessions;
mod slo;
mod usage;

use thiserror::Error;

pub use alerts::{AlertChange, AlertEvent, AlertEventKind, AlertFilter, FiringAlert};
pub use audit::{AuditEntry, AuditFilter, AuditRecord};
pub use billing::{BILLING_BUCKET_MS, BilledUsage, BillingFilter, BillingRecord, BillingScope};
pub use db::Registry;
pub use dead_letters::{
    DeadLetterClaim, DeadLetterFilter, DeadLetterRecord, DeadLetterSummary, NewDeadLetter,
    ReplayClaim,
};
pub use jobs::{Job, JobCount, JobFilter, JobState, NewJob};
pub use key::KeySecret;
pub use keys::{KeyFilter, KeyPatch, KeyRecord, KeyStatus, NewKey, VerifyError};
pub use owners::{Owner, OwnerContact};
pub use slo::SloMinute;
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
