//! The job queue: an outbox of work written beside what caused it, claimed by one worker
//! at a time under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises
//! writers), retried at a time the worker chooses, then dead-lettered.

use std::time::Duration;

use serde::Serialize;

use crate::RegistryError;
use crate::db::{Registry, on_db};

/// Work to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What to do (`deliver`, …): the worker that takes it.
    pub kind: String,
    /// Its input.
    pub payload: serde_json::Value,
    /// Queued once: a second job with the same key is dropped.
    pub idempotency_key: String,
    /// Tries before it is dead-lettered.
    pub max_attempts: u32,
    /// Not before this instant (ms).
    pub run_at: i64,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobState {
    /// Waiting for its time or a worker.
    Queued,
    /// Held by a worker until its lease ends.
    Running,
    /// Done.
    Done,
    /// Out of tries, or failed for good: kept for an operator to retry or discard.
    Dead,
    /// Given up by an operator.
    Discarded,
}

impl JobState {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Discarded => "discarded",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Dead,
            JobState::Discarded,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    /// Its id (`job_…`).
    pub id: String,
    /// What to do.
    pub kind: String,
    /// Its input.
    pub payload: serde_json::Value,
    /// The key it was queued under.
    pub idempotency_key: String,
    /// Where it stands.
    pub state: JobState,
    /// Tries begun.
    pub attempts: u32,
    /// Tries allowed.
    pub max_attempts: u32,
    /// Due at (ms).
    pub run_at: i64,
    /// The worker holding it, while running.
    pub leased_by: Option<String>,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Queued at (ms).
    pub created_at: i64,
    /// Last changed at (ms).
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    kind: String,
    payload: String,
    idempotency_key: String,
    state: String,
    attempts: i64,
    max_attempts: i64,
    run_at: i64,
    leased_by: Option<String>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        Job {
            id: r.id,
            kind: r.kind,
            payload: serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null),
            idempotency_key: r.idempotency_key,
            state: JobState::from_name(&r.state).unwrap_or(JobState::Dead),
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            max_attempts: u32::try_from(r.max_attempts).unwrap_or(u32::MAX),
            run_at: r.run_at,
            leased_by: r.leased_by,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, kind, payload, idempotency_key, state, attempts, max_attempts, \
                       run_at, leased_by, last_error, created_at, updated_at";

/// The insert every outbox write shares; a repeated idempotency key inserts nothing.
pub(crate) const INSERT_JOB: &str = "INSERT INTO jobs (id, kind, payload, idempotency_key, state, \
     attempts, max_attempts, run_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7) ON CONFLICT (idempotency_key) DO NOTHING";

/// Queues `$job` (a [`NewJob`]) at `$now` on `$executor`, inside whatever transaction that
/// is, giving the rows inserted (0 when its key was queued before).
macro_rules! insert_job {
    ($executor:expr, $job:expr, $now:expr) => {{
        let job: &$crate::jobs::NewJob = $job;
        sqlx::query($crate::jobs::INSERT_JOB)
            .bind($crate::jobs::new_id()?)
            .bind(&job.kind)
            .bind(job.payload.to_string())
            .bind(&job.idempotency_key)
            .bind(i64::from(job.max_attempts))
            .bind(job.run_at)
            .bind($now)
            .execute($executor)
            .await?
            .rows_affected()
    }};
}
pub(crate) use insert_job;

/// A new job id.
pub(crate) fn new_id() -> Result<String, RegistryError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| RegistryError::Invalid(format!("no randomness for a job id: {e}")))?;
    Ok(format!("job_{:016x}", u64::from_le_bytes(bytes)))
}

/// Which jobs to list, newest first, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only in this state.
    pub state: Option<JobState>,
    /// Only of this kind.
    pub kind: Option<String>,
    /// Created before this job (its id and creation time), for the next page.
    pub before: Option<(i64, String)>,
    /// At most this many (1 to 1000; default 100).
    pub limit: Option<u32>,
}

/// How many jobs are in one state, and how long the oldest has waited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobCount {
    /// The state.
    pub state: JobState,
    /// Jobs in it.
    pub count: i64,
    /// The oldest one's creation (ms).
    pub oldest: Option<i64>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Registry {
    /// Queues a job unless one with its idempotency key exists; true when queued now.
    pub async fn enqueue(&self, job: &NewJob, now: i64) -> Result<bool, RegistryError> {
        let n = on_db!(&self.db, |pool| insert_job!(pool, job, now));
        Ok(n > 0)
    }

    /// Gives `worker` up to `n` due jobs of the `kinds` named, each held for `lease`: a
    /// worker that dies loses its jobs when the lease ends. A job whose lease ended after
    /// its last try is dead-lettered instead.
    pub async fn claim_jobs(
        &self,
        worker: &str,
        kinds: &[&str],
        n: u32,
        lease: Duration,
        now: i64,
    ) -> Result<Vec<Job>, RegistryError> {
        let until = now.saturating_add(millis(lease));
        let kinds = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
        let bury = "UPDATE jobs SET state = 'dead', leased_by = NULL, updated_at = $1, \
                    last_error = COALESCE(last_error, 'the worker holding it stopped') \
                    WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts";
        let due = "(state = 'queued' AND run_at <= $3) \
                   OR (state = 'running' AND lease_until < $3 AND attempts < max_attempts)";
        let rows: Vec<JobRow> = on_db!(&self.db, |pool| {
            sqlx::query(bury).bind(now).execute(pool).await?;
            let sql = match self.db {
                crate::db::Db::Postgres(_) => format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, \
                     leased_by = $2, updated_at = $3 WHERE id IN (SELECT id FROM jobs \
                     WHERE ({due}) AND kind IN (SELECT json_array_elements_text($4::json)) \
                     ORDER BY run_at LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}"
                ),
                crate::db::Db::Sqlite(_) => format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, \
                     leased_by = $2, updated_at = $3 WHERE id IN (SELECT id FROM jobs \
                     WHERE ({due}) AND kind IN (SELECT value FROM json_each($4)) \
                     ORDER BY run_at LIMIT $5) RETURNING {COLUMNS}"
                ),
            };
            sqlx::query_as(&sql)
                .bind(until)
                .bind(worker)
                .bind(now)
                .bind(&kinds)
                .bind(i64::from(n.max(1)))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Job::from).collect())
    }

    /// Marks a job `worker` holds as done; false when it no longer holds it.
    pub async fn complete_job(
        &self,
        id: &str,
        worker: &str,
        now: i64,
    ) -> Result<bool, RegistryError> {
        let sql = "UPDATE jobs SET state = 'done', leased_by = NULL, lease_until = NULL, \
                   updated_at = $3 WHERE id = $1 AND leased_by = $2 AND state = 'running'";
        let n = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(worker)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Records a failed try of a job `worker` holds: queued again at `retry_at`, or dead
    /// when that is none or the job is out of tries. Gives the state it is left in, none
    /// when the worker no longer held it.
    pub async fn fail_job(
        &self,
        id: &str,
        worker: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<Option<JobState>, RegistryError> {
        let sql = "UPDATE jobs SET \
                   state = CASE WHEN $4 IS NULL OR attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
                   run_at = COALESCE($4, run_at), last_error = $3, leased_by = NULL, \
                   lease_until = NULL, updated_at = $5 \
                   WHERE id = $1 AND leased_by = $2 AND state = 'running' RETURNING state";
        let row: Option<(String,)> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(id)
                .bind(worker)
                .bind(error)
                .bind(retry_at)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(s,)| JobState::from_name(&s)))
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<Job>, RegistryError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<JobRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(Job::from))
    }

    /// A page of jobs, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, RegistryError> {
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let (before_at, before_id) = filter
            .before
            .clone()
            .map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR kind = $2) \
             AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let rows: Vec<JobRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(filter.state.map(JobState::name))
                .bind(filter.kind.as_deref())
                .bind(before_at)
                .bind(before_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Job::from).collect())
    }

    /// Queues a dead or discarded job again with fresh tries; false when it is not one.
    pub async fn retry_job(&self, id: &str, now: i64) -> Result<bool, RegistryError> {
        let sql = "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, updated_at = $2 \
                   WHERE id = $1 AND state IN ('dead', 'discarded')";
        let n = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Gives up a queued or dead job; false when it is not one.
    pub async fn discard_job(&self, id: &str, now: i64) -> Result<bool, RegistryError> {
        let sql = "UPDATE jobs SET state = 'discarded', updated_at = $2 \
                   WHERE id = $1 AND state IN ('queued', 'dead')";
        let n = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Jobs per state, with the oldest one's age: queue depth and lag.
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, RegistryError> {
        let sql = "SELECT state, COUNT(*), MIN(created_at) FROM jobs GROUP BY state";
        let rows: Vec<(String, i64, Option<i64>)> =
            on_db!(&self.db, |pool| sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .filter_map(|(s, count, oldest)| {
                Some(JobCount {
                    state: JobState::from_name(&s)?,
                    count,
                    oldest,
                })
            })
            .collect())
    }

    /// Removes done and discarded jobs last changed before `before` (ms).
    pub async fn prune_jobs(&self, before: i64) -> Result<u64, RegistryError> {
        let sql = "DELETE FROM jobs WHERE state IN ('done', 'discarded') AND updated_at < $1";
        Ok(on_db!(&self.db, |pool| sqlx::query(sql)
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
