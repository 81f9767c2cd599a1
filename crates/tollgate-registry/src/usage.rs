//! Usage and violations: raw events written in batches, rolled up per minute, hour and
//! day as they are written, read back by key and time, and pruned by age.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::RegistryError;
use crate::billing::BILLING_BUCKET_MS;
use crate::db::{Registry, on_db};

/// One decision made with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// When (ms since the Unix epoch).
    pub at: i64,
    /// The key's id.
    pub key_id: String,
    /// The key's owner.
    pub owner: String,
    /// The key's tier.
    pub tier: String,
    /// Whether the request was admitted.
    pub allowed: bool,
    /// The decision's code (`OK`, `RATE_LIMITED`, …).
    pub code: String,
    /// Units asked for.
    pub cost: i64,
}

/// One denial.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Violation {
    /// When (ms).
    pub at: i64,
    /// The verified key, if any.
    pub key_id: Option<String>,
    /// The rule (or tier limit) that denied; empty for a list or key refusal.
    pub rule: String,
    /// The decision's code.
    pub code: String,
    /// What was known of the caller, without secrets (`ip`, `user`, `path`, …).
    pub subject: serde_json::Value,
}

/// A stored violation, with its id for paging.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViolationRecord {
    /// Its id; pages continue after the last one seen.
    pub id: i64,
    /// The violation.
    #[serde(flatten)]
    pub violation: Violation,
}

/// How finely usage history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granularity {
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per UTC day.
    Day,
}

impl Granularity {
    /// All of them, finest first.
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    /// Parses `minute`, `hour` or `day`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// Its length in ms.
    pub fn millis(self) -> i64 {
        match self {
            Granularity::Minute => 60_000,
            Granularity::Hour => 3_600_000,
            Granularity::Day => 86_400_000,
        }
    }

    /// The start of the period holding `at`.
    pub fn bucket(self, at: i64) -> i64 {
        // Saturating: a period reaching below `i64::MIN` starts there.
        at.saturating_sub(at.rem_euclid(self.millis()))
    }
}

/// Decisions of one key in one period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageBucket {
    /// The period's start (ms).
    pub start: i64,
    /// Decisions made.
    pub requests: i64,
    /// Of which admitted.
    pub allowed: i64,
    /// Of which denied.
    pub denied: i64,
    /// Units admitted.
    pub units: i64,
}

impl From<(i64, i64, i64, i64, i64)> for UsageBucket {
    /// A row of `(start, requests, allowed, denied, units)`.
    fn from((start, requests, allowed, denied, units): (i64, i64, i64, i64, i64)) -> Self {
        UsageBucket {
            start,
            requests,
            allowed,
            denied,
            units,
        }
    }
}

/// How long records are kept; `None` keeps them for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw usage events.
    pub events: Option<Duration>,
    /// Minute rollups.
    pub minute: Option<Duration>,
    /// Hour rollups.
    pub hour: Option<Duration>,
    /// Day rollups.
    pub day: Option<Duration>,
    /// Violations.
    pub violations: Option<Duration>,
    /// Audit entries.
    pub audit: Option<Duration>,
    /// Quarter-hour billing usage (closed periods keep their records for good).
    pub billing: Option<Duration>,
    /// Finished and discarded jobs.
    pub jobs: Option<Duration>,
    /// The reverse proxy's dead letters, by when they were given up.
    pub dead_letters: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        let days = |d: u64| Some(Duration::from_secs(d.saturating_mul(86_400)));
        Retention {
            events: days(7),
            minute: days(2),
            hour: days(90),
            day: days(730),
            violations: days(90),
            audit: None,
            billing: days(400),
            jobs: days(30),
            dead_letters: days(30),
        }
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Raw events.
    pub events: u64,
    /// Rollup rows.
    pub rollups: u64,
    /// Violations.
    pub violations: u64,
    /// Audit entries.
    pub audit: u64,
    /// Billing usage buckets.
    pub billing: u64,
    /// Finished jobs.
    pub jobs: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

/// Which violations to list, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    /// Only this key's.
    pub key_id: Option<String>,
    /// From this instant (ms, inclusive).
    pub from: Option<i64>,
    /// Until this instant (ms, exclusive).
    pub to: Option<i64>,
    /// Ids after this one.
    pub after: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    pub limit: Option<u32>,
}

#[derive(sqlx::FromRow)]
struct ViolationRow {
    id: i64,
    at: i64,
    key_id: Option<String>,
    rule: String,
    code: String,
    subject: String,
}

fn cutoff(now: i64, age: Option<Duration>) -> Option<i64> {
    age.map(|a| now.saturating_sub(i64::try_from(a.as_millis()).unwrap_or(i64::MAX)))
}

impl Registry {
    /// Writes a batch of usage events and violations in one transaction, adding the events
    /// to their minute, hour and day rollups.
    pub async fn write_usage(
        &self,
        events: &[UsageEvent],
        violations: &[Violation],
    ) -> Result<(), RegistryError> {
        let mut rollups: BTreeMap<(&str, Granularity, i64), UsageBucket> = BTreeMap::new();
        for e in events {
            for g in Granularity::ALL {
                let b = rollups.entry((&e.key_id, g, g.bucket(e.at))).or_default();
                b.requests = b.requests.saturating_add(1);
                if e.allowed {
                    b.allowed = b.allowed.saturating_add(1);
                    b.units = b.units.saturating_add(e.cost);
                } else {
                    b.denied = b.denied.saturating_add(1);
                }
            }
        }
        let insert_event = "INSERT INTO usage_events (at, key_id, owner, tier, allowed, code, cost) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let upsert = "INSERT INTO usage_rollups (key_id, granularity, bucket, requests, allowed, denied, units) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (key_id, granularity, bucket) DO UPDATE SET \
                      requests = usage_rollups.requests + excluded.requests, \
                      allowed = usage_rollups.allowed + excluded.allowed, \
                      denied = usage_rollups.denied + excluded.denied, \
                      units = usage_rollups.units + excluded.units";
        let mut billed: BTreeMap<(&str, &str, i64), (&str, i64, i64)> = BTreeMap::new();
        for e in events.iter().filter(|e| e.allowed) {
            let bucket = e.at.saturating_sub(e.at.rem_euclid(BILLING_BUCKET_MS));
            let b = billed
                .entry((&e.key_id, &e.tier, bucket))
                .or_insert((&e.owner, 0, 0));
            b.1 = b.1.saturating_add(1);
            b.2 = b.2.saturating_add(e.cost);
        }
        let bill = "INSERT INTO billing_usage (key_id, tier, bucket, owner, requests, units) \
                    VALUES ($1, $2, $3, $4, $5, $6) \
                    ON CONFLICT (key_id, tier, bucket) DO UPDATE SET \
                    requests = billing_usage.requests + excluded.requests, \
                    units = billing_usage.units + excluded.units";
        let mut last_used: BTreeMap<&str, i64> = BTreeMap::new();
        for e in events {
            let at = last_used.entry(&e.key_id).or_insert(e.at);
            *at = (*at).max(e.at);
        }
        let touch = "UPDATE keys SET last_used_at = $1 \
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";
        let insert_violation = "INSERT INTO violations (at, key_id, rule, code, subject) \
                                VALUES ($1, $2, $3, $4, $5)";
        on_db!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for e in events {
                sqlx::query(insert_event)
                    .bind(e.at)
                    .bind(&e.key_id)
                    .bind(&e.owner)
                    .bind(&e.tier)
                    .bind(e.allowed)
                    .bind(&e.code)
                    .bind(e.cost)
                    .execute(&mut *tx)
                    .await?;
            }
            for ((key_id, g, bucket), b) in &rollups {
                sqlx::query(upsert)
                    .bind(*key_id)
                    .bind(g.name())
                    .bind(*bucket)
                    .bind(b.requests)
                    .bind(b.allowed)
                    .bind(b.denied)
                    .bind(b.units)
                    .execute(&mut *tx)
                    .await?;
            }
            for ((key_id, tier, bucket), (owner, requests, units)) in &billed {
                sqlx::query(bill)
                    .bind(*key_id)
                    .bind(*tier)
                    .bind(*bucket)
                    .bind(*owner)
                    .bind(*requests)
                    .bind(*units)
                    .execute(&mut *tx)
                    .await?;
            }
            for (key_id, at) in &last_used {
                sqlx::query(touch)
                    .bind(*at)
                    .bind(*key_id)
                    .execute(&mut *tx)
                    .await?;
            }
            for v in violations {
                sqlx::query(insert_violation)
                    .bind(v.at)
                    .bind(v.key_id.as_deref())
                    .bind(&v.rule)
                    .bind(&v.code)
                    .bind(v.subject.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A key's usage per `granularity` period in `[from, to)`, oldest first; periods with
    /// no decision are left out.
    pub async fn usage_history(
        &self,
        key_id: &str,
        granularity: Granularity,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageBucket>, RegistryError> {
        let sql = "SELECT bucket, requests, allowed, denied, units FROM usage_rollups \
                   WHERE key_id = $1 AND granularity = $2 AND bucket >= $3 AND bucket < $4 \
                   ORDER BY bucket LIMIT 10000";
        let rows: Vec<(i64, i64, i64, i64, i64)> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(key_id)
                .bind(granularity.name())
                .bind(granularity.bucket(from))
                .bind(to)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(UsageBucket::from).collect())
    }

    /// The usage of every key of `owner` together, per `granularity` period in
    /// `[from, to)`, oldest first: what a customer is billed on.
    pub async fn owner_usage_history(
        &self,
        owner: &str,
        granularity: Granularity,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageBucket>, RegistryError> {
        let sql = "SELECT r.bucket, CAST(SUM(r.requests) AS BIGINT), CAST(SUM(r.allowed) AS BIGINT), \
                   CAST(SUM(r.denied) AS BIGINT), CAST(SUM(r.units) AS BIGINT) \
                   FROM usage_rollups r JOIN keys k ON k.id = r.key_id \
                   WHERE k.owner = $1 AND r.granularity = $2 AND r.bucket >= $3 AND r.bucket < $4 \
                   GROUP BY r.bucket ORDER BY r.bucket LIMIT 10000";
        let rows: Vec<(i64, i64, i64, i64, i64)> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(owner)
                .bind(granularity.name())
                .bind(granularity.bucket(from))
                .bind(to)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(UsageBucket::from).collect())
    }

    /// How many raw usage events are stored (for one key, or all).
    pub async fn count_usage_events(&self, key_id: Option<&str>) -> Result<i64, RegistryError> {
        let sql = "SELECT COUNT(*) FROM usage_events WHERE ($1 IS NULL OR key_id = $1)";
        let (n,): (i64,) = on_db!(&self.db, |pool| {
            sqlx::query_as(sql).bind(key_id).fetch_one(pool).await?
        });
        Ok(n)
    }

    /// A page of violations, oldest first.
    pub async fn violations(
        &self,
        filter: &ViolationFilter,
    ) -> Result<Vec<ViolationRecord>, RegistryError> {
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let sql = "SELECT id, at, key_id, rule, code, subject FROM violations \
                   WHERE ($1 IS NULL OR key_id = $1) AND ($2 IS NULL OR at >= $2) \
                   AND ($3 IS NULL OR at < $3) AND ($4 IS NULL OR id > $4) \
                   ORDER BY id LIMIT $5";
        let rows: Vec<ViolationRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(filter.key_id.as_deref())
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| ViolationRecord {
                id: r.id,
                violation: Violation {
                    at: r.at,
                    key_id: r.key_id,
                    rule: r.rule,
                    code: r.code,
                    subject: serde_json::from_str(&r.subject).unwrap_or(serde_json::Value::Null),
                },
            })
            .collect())
    }

    /// Removes what is older than `retention` allows, as of `now` (ms).
    pub async fn prune(&self, retention: &Retention, now: i64) -> Result<Pruned, RegistryError> {
        let mut pruned = Pruned::default();
        let delete = |sql: &'static str, before: i64| async move {
            let n = on_db!(&self.db, |pool| {
                sqlx::query(sql)
                    .bind(before)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            Ok::<u64, RegistryError>(n)
        };
        if let Some(before) = cutoff(now, retention.events) {
            pruned.events = delete("DELETE FROM usage_events WHERE at < $1", before).await?;
        }
        for (g, age) in [
            (Granularity::Minute, retention.minute),
            (Granularity::Hour, retention.hour),
            (Granularity::Day, retention.day),
        ] {
            if let Some(before) = cutoff(now, age) {
                let sql = "DELETE FROM usage_rollups WHERE granularity = $1 AND bucket < $2";
                let rows = on_db!(&self.db, |pool| {
                    sqlx::query(sql)
                        .bind(g.name())
                        .bind(before)
                        .execute(pool)
                        .await?
                        .rows_affected()
                });
                pruned.rollups = pruned.rollups.saturating_add(rows);
            }
        }
        if let Some(before) = cutoff(now, retention.violations) {
            pruned.violations = delete("DELETE FROM violations WHERE at < $1", before).await?;
        }
        if let Some(before) = cutoff(now, retention.audit) {
            pruned.audit = delete("DELETE FROM audit WHERE at < $1", before).await?;
        }
        if let Some(before) = cutoff(now, retention.billing) {
            pruned.billing = delete("DELETE FROM billing_usage WHERE bucket < $1", before).await?;
        }
        if let Some(before) = cutoff(now, retention.jobs) {
            pruned.jobs = self.prune_jobs(before).await?;
        }
        if let Some(before) = cutoff(now, retention.dead_letters) {
            pruned.dead_letters = delete("DELETE FROM dead_letters WHERE at < $1", before).await?;
        }
        Ok(pruned)
    }
}
