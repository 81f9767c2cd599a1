//! Each account's admitted units in the current period, for usage rules. The buckets
//! before the current one change no more once written, so they are summed again only when
//! the current bucket moves on (and every few minutes for writes that came late); each
//! evaluation reads the current bucket alone.

use std::collections::BTreeMap;

use tollgate_registry::{BILLING_BUCKET_MS, BillingScope, Registry, RegistryError};

use crate::billing::{Calendar, Period};

/// How often the settled buckets are summed again, for usage written after its bucket
/// ended (a batch waiting in a queue across the turn of a bucket).
const RESETTLE_MS: i64 = 300_000;

/// One account's units in the period under one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUsage {
    /// The key or owner.
    pub account: String,
    /// Its owner.
    pub owner: String,
    /// The tier.
    pub tier: String,
    /// Admitted units.
    pub units: i64,
}

/// The sums of one scope, kept between evaluations.
#[derive(Debug, Default)]
struct Settled {
    period_start: i64,
    /// Where the settled sums end: the current bucket's start when summed.
    until: i64,
    summed_at: i64,
    sums: BTreeMap<(String, String), (String, i64)>,
}

/// Per-period sums, one set per scope.
#[derive(Debug, Default)]
pub struct UsageSums {
    scopes: BTreeMap<&'static str, Settled>,
}

impl UsageSums {
    /// Every account's units per tier in `period` up to `now`.
    pub async fn current(
        &mut self,
        registry: &Registry,
        scope: BillingScope,
        period: Period,
        now: i64,
    ) -> Result<Vec<AccountUsage>, RegistryError> {
        let bucket = now
            .div_euclid(BILLING_BUCKET_MS)
            .saturating_mul(BILLING_BUCKET_MS);
        let from = bucket.max(period.start);
        let settled = self.scopes.entry(scope.name()).or_default();
        let stale = settled.period_start != period.start
            || settled.until != from
            || now.saturating_sub(settled.summed_at) >= RESETTLE_MS;
        if stale {
            let rows = registry.usage_totals(scope, period.start, from, 1).await?;
            settled.sums = rows
                .into_iter()
                .map(|r| ((r.account, r.tier), (r.owner, r.units)))
                .collect();
            settled.period_start = period.start;
            settled.until = from;
            settled.summed_at = now;
        }
        let mut sums = settled.sums.clone();
        for r in registry.usage_totals(scope, from, period.end, 1).await? {
            let entry = sums
                .entry((r.account, r.tier))
                .or_insert_with(|| (r.owner, 0));
            entry.1 = entry.1.saturating_add(r.units);
        }
        Ok(sums
            .into_iter()
            .map(|((account, tier), (owner, units))| AccountUsage {
                account,
                owner,
                tier,
                units,
            })
            .collect())
    }
}

/// The calendar usage rules count in: billing's, or calendar months in UTC.
pub fn calendar(billing: Option<&crate::billing::BillingSettings>) -> Calendar {
    billing.map_or_else(
        || Calendar {
            kind: crate::billing::PeriodKind::Month,
            zone: jiff::tz::TimeZone::UTC,
        },
        |b| b.calendar.clone(),
    )
}
