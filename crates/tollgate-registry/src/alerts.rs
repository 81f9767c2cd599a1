//! Alert states and history: an alert fires once and resolves once per subject, and each
//! change is written with the deliveries it causes in one transaction.

use serde::Serialize;

use crate::RegistryError;
use crate::db::{Registry, on_db};
use crate::jobs::{NewJob, insert_job};

/// Whether an alert began or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertEventKind {
    /// Its condition became true.
    Fired,
    /// Its condition is true no more.
    Resolved,
}

impl AlertEventKind {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            AlertEventKind::Fired => "fired",
            AlertEventKind::Resolved => "resolved",
        }
    }
}

/// A change of an alert's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertChange {
    /// The rule's name.
    pub rule: String,
    /// What it is about: `key:…`, `owner:…@period`, `rule:…`, `store`.
    pub subject: String,
    /// Fired or resolved.
    pub event: AlertEventKind,
    /// The rule's severity.
    pub severity: String,
    /// The measured value that crossed (or fell back under) the threshold.
    pub value: f64,
    /// One line saying what happened.
    pub summary: String,
    /// When (ms).
    pub at: i64,
}

/// A change as stored, with its id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertEvent {
    /// Its id: deliveries of it carry it.
    pub id: i64,
    /// The change.
    #[serde(flatten)]
    pub change: AlertChange,
}

/// An alert now firing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiringAlert {
    /// The rule's name.
    pub rule: String,
    /// What it is about.
    pub subject: String,
    /// Since when (ms).
    pub since: i64,
    /// The value that fired it.
    pub value: f64,
}

/// Which alert events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only this rule's.
    pub rule: Option<String>,
    /// Only events before this id, for the next page.
    pub before: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    pub limit: Option<u32>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    at: i64,
    rule: String,
    subject: String,
    event: String,
    severity: String,
    value: f64,
    summary: String,
}

impl Registry {
    /// Records `change` if it changes the alert's state (firing when it was not, resolved
    /// when it was), with the jobs `deliveries` makes for the stored event, in one
    /// transaction. Gives the event when it was recorded; none when the alert already
    /// stood so, so that each alert fires once and resolves once.
    pub async fn change_alert(
        &self,
        change: &AlertChange,
        deliveries: impl Fn(&AlertEvent) -> Vec<NewJob>,
    ) -> Result<Option<AlertEvent>, RegistryError> {
        let fire = "INSERT INTO alert_states (rule, subject, state, since, value) \
                    VALUES ($1, $2, 'firing', $3, $4) ON CONFLICT (rule, subject) DO UPDATE \
                    SET state = 'firing', since = excluded.since, value = excluded.value \
                    WHERE alert_states.state <> 'firing'";
        let resolve = "UPDATE alert_states SET state = 'resolved', since = $3, value = $4 \
                       WHERE rule = $1 AND subject = $2 AND state = 'firing'";
        let record = "INSERT INTO alert_events (at, rule, subject, event, severity, value, summary) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
        let sql = match change.event {
            AlertEventKind::Fired => fire,
            AlertEventKind::Resolved => resolve,
        };
        let event = on_db!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(sql)
                .bind(&change.rule)
                .bind(&change.subject)
                .bind(change.at)
                .bind(change.value)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                None
            } else {
                let (id,): (i64,) = sqlx::query_as(record)
                    .bind(change.at)
                    .bind(&change.rule)
                    .bind(&change.subject)
                    .bind(change.event.name())
                    .bind(&change.severity)
                    .bind(change.value)
                    .bind(&change.summary)
                    .fetch_one(&mut *tx)
                    .await?;
                let event = AlertEvent {
                    id,
                    change: change.clone(),
                };
                for job in deliveries(&event) {
                    insert_job!(&mut *tx, &job, change.at);
                }
                tx.commit().await?;
                Some(event)
            }
        });
        Ok(event)
    }

    /// The alerts firing now (of one rule, or all).
    pub async fn firing_alerts(
        &self,
        rule: Option<&str>,
    ) -> Result<Vec<FiringAlert>, RegistryError> {
        let sql = "SELECT rule, subject, since, value FROM alert_states \
                   WHERE state = 'firing' AND ($1 IS NULL OR rule = $1) ORDER BY since, rule, subject";
        let rows: Vec<(String, String, i64, f64)> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql).bind(rule).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(rule, subject, since, value)| FiringAlert {
                rule,
                subject,
                since,
                value,
            })
            .collect())
    }

    /// A page of alert events, newest first.
    pub async fn alert_history(
        &self,
        filter: &AlertFilter,
    ) -> Result<Vec<AlertEvent>, RegistryError> {
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let sql = "SELECT id, at, rule, subject, event, severity, value, summary FROM alert_events \
                   WHERE ($1 IS NULL OR rule = $1) AND ($2 IS NULL OR id < $2) \
                   ORDER BY id DESC LIMIT $3";
        let rows: Vec<EventRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(filter.rule.as_deref())
                .bind(filter.before)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| AlertEvent {
                id: r.id,
                change: AlertChange {
                    rule: r.rule,
                    subject: r.subject,
                    event: if r.event == "resolved" {
                        AlertEventKind::Resolved
                    } else {
                        AlertEventKind::Fired
                    },
                    severity: r.severity,
                    value: r.value,
                    summary: r.summary,
                    at: r.at,
                },
            })
            .collect())
    }

    /// Denials per key (or per rule, `by_rule`) in `[from, to)`, most first, the `limit`
    /// busiest: what denial-rate alerts watch.
    pub async fn denial_counts(
        &self,
        by_rule: bool,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<(String, i64)>, RegistryError> {
        let column = if by_rule { "rule" } else { "key_id" };
        let sql = format!(
            "SELECT {column}, COUNT(*) FROM violations WHERE at >= $1 AND at < $2 \
             AND {column} IS NOT NULL AND {column} <> '' GROUP BY {column} \
             ORDER BY COUNT(*) DESC, {column} LIMIT $3"
        );
        Ok(on_db!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(pool)
            .await?))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        on_db!(&self.db, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }
}
