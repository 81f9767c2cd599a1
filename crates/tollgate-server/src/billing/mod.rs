//! Billing: price plans per tier, calendar periods in a time zone, the live projection of
//! the current period and the close of each finished one.

pub mod close;
pub mod period;
pub mod plan;

use std::collections::BTreeMap;
use std::time::Duration;

use tollgate_registry::BillingScope;

pub use period::{Calendar, Period, PeriodKind};
pub use plan::Plan;

/// The `billing` section.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingSettings {
    /// Whom a record bills: an owner (all their keys of a tier) or each key.
    pub scope: BillingScope,
    /// How periods are cut.
    pub calendar: Calendar,
    /// How long after a period ends it is closed, so that usage still queued for the
    /// database is in it.
    pub close_after: Duration,
    /// The plan of each tier; tiers without one are not billed.
    pub plans: BTreeMap<String, Plan>,
}
