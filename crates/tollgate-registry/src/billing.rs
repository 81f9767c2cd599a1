//! Billing: admitted units summed per account and period from the quarter-hour billing
//! usage the usage writer keeps, and the final record of each closed period.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::RegistryError;
use crate::db::{Registry, on_db};
use crate::jobs::{NewJob, insert_job};

/// The length of a billing usage bucket (ms): a quarter of an hour, on which every time
/// zone's days begin.
pub const BILLING_BUCKET_MS: i64 = 900_000;

/// What a billing account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BillingScope {
    /// A key owner: all their keys of a tier together.
    Owner,
    /// One key.
    Key,
}

impl BillingScope {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            BillingScope::Owner => "owner",
            BillingScope::Key => "key",
        }
    }
}

/// One account's admitted usage of one tier in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BilledUsage {
    /// The owner, or the key id.
    pub account: String,
    /// The owner (the account itself when billed per owner).
    pub owner: String,
    /// The tier the usage was admitted under.
    pub tier: String,
    /// Admitted requests.
    pub requests: i64,
    /// Admitted units.
    pub units: i64,
}

/// A closed period's bill: money in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillingRecord {
    /// What `account` names.
    pub scope: BillingScope,
    /// The owner, or the key id.
    pub account: String,
    /// The owner.
    pub owner: String,
    /// The tier, whose plan priced it.
    pub tier: String,
    /// The period's first instant (ms).
    pub period_start: i64,
    /// The instant after its last (ms).
    pub period_end: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Units admitted in the period.
    pub units: i64,
    /// Units the base fee includes.
    pub included: i64,
    /// Units beyond them.
    pub overage_units: i64,
    /// The base fee.
    pub base_fee: i64,
    /// What the overage costs.
    pub overage_amount: i64,
    /// The total.
    pub amount: i64,
    /// When the period was closed (ms).
    pub closed_at: i64,
}

/// Which billing records to list.
#[derive(Debug, Clone, Default)]
pub struct BillingFilter {
    /// Only this owner's.
    pub owner: Option<String>,
    /// Periods starting at or after this instant (ms).
    pub from: Option<i64>,
    /// Periods starting before this instant (ms).
    pub to: Option<i64>,
    /// At most this many (1 to 10000; default 1000).
    pub limit: Option<u32>,
}

/// An account (or tier), its owner, requests and units.
type UsageRow = (String, String, i64, i64);

#[derive(sqlx::FromRow)]
struct RecordRow {
    scope: String,
    account: String,
    owner: String,
    tier: String,
    period_start: i64,
    period_end: i64,
    currency: String,
    units: i64,
    included: i64,
    overage_units: i64,
    base_fee: i64,
    overage_amount: i64,
    amount: i64,
    closed_at: i64,
}

impl From<RecordRow> for BillingRecord {
    fn from(r: RecordRow) -> Self {
        BillingRecord {
            scope: if r.scope == "key" {
                BillingScope::Key
            } else {
                BillingScope::Owner
            },
            account: r.account,
            owner: r.owner,
            tier: r.tier,
            period_start: r.period_start,
            period_end: r.period_end,
            currency: r.currency,
            units: r.units,
            included: r.included,
            overage_units: r.overage_units,
            base_fee: r.base_fee,
            overage_amount: r.overage_amount,
            amount: r.amount,
            closed_at: r.closed_at,
        }
    }
}

impl Registry {
    /// Every account's usage of `tier` in `[from, to)` (quarter-hour aligned), and every
    /// account with a key of that tier alive in the period though it used nothing: the
    /// accounts the period bills.
    pub async fn billed_usage(
        &self,
        scope: BillingScope,
        tier: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<BilledUsage>, RegistryError> {
        let account = match scope {
            BillingScope::Owner => "owner",
            BillingScope::Key => "key_id",
        };
        let used = format!(
            "SELECT {account}, MIN(owner), CAST(SUM(requests) AS BIGINT), CAST(SUM(units) AS BIGINT) \
             FROM billing_usage WHERE tier = $1 AND bucket >= $2 AND bucket < $3 GROUP BY {account}"
        );
        let key_account = match scope {
            BillingScope::Owner => "owner",
            BillingScope::Key => "id",
        };
        let alive = format!(
            "SELECT DISTINCT {key_account}, owner FROM keys WHERE tier = $1 AND created_at < $3 \
             AND (revoked_at IS NULL OR revoked_at >= $2)"
        );
        let (used, alive): (Vec<UsageRow>, Vec<(String, String)>) = on_db!(&self.db, |pool| {
            let used = sqlx::query_as(&used)
                .bind(tier)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?;
            let alive = sqlx::query_as(&alive)
                .bind(tier)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?;
            (used, alive)
        });
        let mut out: BTreeMap<String, BilledUsage> = BTreeMap::new();
        for (account, owner) in alive {
            out.insert(
                account.clone(),
                BilledUsage {
                    account,
                    owner,
                    tier: tier.into(),
                    requests: 0,
                    units: 0,
                },
            );
        }
        for (account, owner, requests, units) in used {
            out.insert(
                account.clone(),
                BilledUsage {
                    account,
                    owner,
                    tier: tier.into(),
                    requests,
                    units,
                },
            );
        }
        Ok(out.into_values().collect())
    }

    /// The accounts whose admitted units in `[from, to)` reach `at_least`, per tier, with
    /// their owner: what usage alerts watch.
    pub async fn usage_totals(
        &self,
        scope: BillingScope,
        from: i64,
        to: i64,
        at_least: i64,
    ) -> Result<Vec<BilledUsage>, RegistryError> {
        let account = match scope {
            BillingScope::Owner => "owner",
            BillingScope::Key => "key_id",
        };
        let sql = format!(
            "SELECT {account}, tier, MIN(owner), CAST(SUM(requests) AS BIGINT), \
             CAST(SUM(units) AS BIGINT) FROM billing_usage WHERE bucket >= $1 AND bucket < $2 \
             GROUP BY {account}, tier HAVING SUM(units) >= $3 ORDER BY {account}, tier"
        );
        let rows: Vec<(String, String, String, i64, i64)> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(from)
                .bind(to)
                .bind(at_least)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(account, tier, owner, requests, units)| BilledUsage {
                account,
                owner,
                tier,
                requests,
                units,
            })
            .collect())
    }

    /// An account's usage per tier in `[from, to)`: what its current period has used.
    pub async fn account_usage(
        &self,
        scope: BillingScope,
        account: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<BilledUsage>, RegistryError> {
        let column = match scope {
            BillingScope::Owner => "owner",
            BillingScope::Key => "key_id",
        };
        let sql = format!(
            "SELECT tier, MIN(owner), CAST(SUM(requests) AS BIGINT), CAST(SUM(units) AS BIGINT) \
             FROM billing_usage WHERE {column} = $1 AND bucket >= $2 AND bucket < $3 \
             GROUP BY tier ORDER BY tier"
        );
        let rows: Vec<UsageRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(account)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(tier, owner, requests, units)| BilledUsage {
                account: account.into(),
                owner,
                tier,
                requests,
                units,
            })
            .collect())
    }

    /// Stores closed periods' records, each with the jobs it causes, in one transaction.
    /// A period closed before keeps its first record and queues nothing again, so closing
    /// twice, or on two instances at once, leaves one record. Gives how many were new.
    pub async fn close_billing(
        &self,
        records: &[(BillingRecord, Vec<NewJob>)],
        now: i64,
    ) -> Result<u64, RegistryError> {
        let insert = "INSERT INTO billing_records (scope, account, owner, tier, period_start, \
                      period_end, currency, units, included, overage_units, base_fee, \
                      overage_amount, amount, closed_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                      ON CONFLICT (scope, account, tier, period_start) DO NOTHING";
        let mut new = 0u64;
        on_db!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for (r, jobs) in records {
                let n = sqlx::query(insert)
                    .bind(r.scope.name())
                    .bind(&r.account)
                    .bind(&r.owner)
                    .bind(&r.tier)
                    .bind(r.period_start)
                    .bind(r.period_end)
                    .bind(&r.currency)
                    .bind(r.units)
                    .bind(r.included)
                    .bind(r.overage_units)
                    .bind(r.base_fee)
                    .bind(r.overage_amount)
                    .bind(r.amount)
                    .bind(r.closed_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    new = new.saturating_add(n);
                    for job in jobs {
                        insert_job!(&mut *tx, job, now);
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(new)
    }

    /// Whether any record of `scope` and `tier` exists for the period starting at `start`.
    pub async fn billing_closed(
        &self,
        scope: BillingScope,
        tier: &str,
        start: i64,
    ) -> Result<bool, RegistryError> {
        let sql = "SELECT COUNT(*) FROM billing_records \
                   WHERE scope = $1 AND tier = $2 AND period_start = $3";
        let (n,): (i64,) = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(scope.name())
                .bind(tier)
                .bind(start)
                .fetch_one(pool)
                .await?
        });
        Ok(n > 0)
    }

    /// Closed periods' records, oldest period first.
    pub async fn billing_records(
        &self,
        filter: &BillingFilter,
    ) -> Result<Vec<BillingRecord>, RegistryError> {
        let limit = i64::from(filter.limit.unwrap_or(1000).clamp(1, 10_000));
        let sql = "SELECT scope, account, owner, tier, period_start, period_end, currency, units, \
                   included, overage_units, base_fee, overage_amount, amount, closed_at \
                   FROM billing_records WHERE ($1 IS NULL OR owner = $1) \
                   AND ($2 IS NULL OR period_start >= $2) AND ($3 IS NULL OR period_start < $3) \
                   ORDER BY period_start, owner, account, tier LIMIT $4";
        let rows: Vec<RecordRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(filter.owner.as_deref())
                .bind(filter.from)
                .bind(filter.to)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(BillingRecord::from).collect())
    }
}
