//! Dead letters: requests the reverse proxy could not deliver, kept until they are replayed
//! with success or discarded.

use serde::Serialize;

use crate::RegistryError;
use crate::db::{Registry, on_db};

/// A request to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    /// When it was given up (ms since the Unix epoch).
    pub at: i64,
    /// The route it came in by.
    pub route: String,
    /// The upstream it was meant for.
    pub upstream: String,
    /// Its method.
    pub method: String,
    /// The URL the client asked for.
    pub url: String,
    /// Its headers, credentials left out.
    pub headers: Vec<(String, String)>,
    /// Its body, up to the route's limit.
    pub body: Vec<u8>,
    /// Whether the body is kept cut.
    pub body_truncated: bool,
    /// Tries made.
    pub tries: u32,
    /// How the last try failed.
    pub last_failure: String,
}

/// A kept request, as listed: everything but its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterSummary {
    /// Its id.
    pub id: i64,
    /// When it was given up (ms since the Unix epoch).
    pub at: i64,
    /// The route it came in by: its host, when it has one, then its path prefix.
    pub route: String,
    /// The upstream it was meant for.
    pub upstream: String,
    /// Its method.
    pub method: String,
    /// The URL the client asked for.
    pub url: String,
    /// Its body's length as kept.
    pub body_size: u64,
    /// Whether the body was longer than the route's limit and is kept cut; such a request
    /// cannot be replayed.
    pub body_truncated: bool,
    /// Tries made when it was given up, and since in replays.
    pub tries: u64,
    /// How the last try (or the last replay) failed.
    pub last_failure: String,
    /// Replays that failed.
    pub replays: u64,
    /// When it was last replayed (ms since the Unix epoch).
    pub replayed_at: Option<i64>,
    /// While a replay of it is under way: when that replay claimed it (ms since the Unix
    /// epoch).
    pub replaying_since: Option<i64>,
}

/// A kept request, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRecord {
    /// What a list shows of it.
    pub summary: DeadLetterSummary,
    /// Its headers as they were forwarded, credentials and cookies left out, in order.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

/// Which dead letters to list, newest first, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// Only those of this route.
    pub route: Option<String>,
    /// Ids before this one (the last id of the page before).
    pub before: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    pub limit: Option<u32>,
}

/// A replay's hold on a dead letter: while it stands, no other replay sends the letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayClaim {
    /// The dead letter's id.
    pub id: i64,
    /// When the claim was made (ms since the Unix epoch); it also tells this claim apart
    /// from a later one that took it over.
    pub since: i64,
}

/// What claiming a dead letter for a replay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterClaim {
    /// Claimed: this replay alone may send it, until it releases the claim.
    Claimed(ReplayClaim),
    /// Another replay holds it, claimed at `since` (ms since the Unix epoch).
    Replaying {
        /// When the other replay claimed it.
        since: i64,
    },
    /// No such dead letter (never, or no longer: delivered or discarded).
    Missing,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: i64,
    route: String,
    upstream: String,
    method: String,
    url: String,
    body_size: i64,
    body_truncated: bool,
    tries: i64,
    last_failure: String,
    replays: i64,
    replayed_at: Option<i64>,
    replaying_since: Option<i64>,
}

impl From<Row> for DeadLetterSummary {
    fn from(r: Row) -> Self {
        DeadLetterSummary {
            id: r.id,
            at: r.at,
            route: r.route,
            upstream: r.upstream,
            method: r.method,
            url: r.url,
            body_size: u64::try_from(r.body_size).unwrap_or(0),
            body_truncated: r.body_truncated,
            tries: u64::try_from(r.tries).unwrap_or(0),
            last_failure: r.last_failure,
            replays: u64::try_from(r.replays).unwrap_or(0),
            replayed_at: r.replayed_at,
            replaying_since: r.replaying_since,
        }
    }
}

const COLUMNS: &str = "id, at, route, upstream, method, url, \
                       CAST(LENGTH(body) AS BIGINT) AS body_size, body_truncated, tries, \
                       last_failure, replays, replayed_at, replaying_since";

impl Registry {
    /// Keeps `letters` in one transaction.
    pub async fn put_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), RegistryError> {
        let sql = "INSERT INTO dead_letters (at, route, upstream, method, url, headers, body, \
                   body_truncated, tries, last_failure) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        on_db!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for l in letters {
                let headers = serde_json::to_string(&l.headers)
                    .map_err(|e| RegistryError::Invalid(e.to_string()))?;
                sqlx::query(sql)
                    .bind(l.at)
                    .bind(&l.route)
                    .bind(&l.upstream)
                    .bind(&l.method)
                    .bind(&l.url)
                    .bind(headers)
                    .bind(&l.body)
                    .bind(l.body_truncated)
                    .bind(i64::from(l.tries))
                    .bind(&l.last_failure)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A page of dead letters, newest first.
    pub async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetterSummary>, RegistryError> {
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let sql = format!(
            "SELECT {COLUMNS} FROM dead_letters WHERE ($1 IS NULL OR route = $1) \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<Row> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(filter.route.as_deref())
                .bind(filter.before)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(DeadLetterSummary::from).collect())
    }

    /// One dead letter, with its headers and body.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterRecord>, RegistryError> {
        let sql = format!("SELECT {COLUMNS}, headers, body FROM dead_letters WHERE id = $1");
        #[derive(sqlx::FromRow)]
        struct Whole {
            #[sqlx(flatten)]
            row: Row,
            headers: String,
            body: Vec<u8>,
        }
        let found: Option<Whole> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        found
            .map(|w| {
                let headers = serde_json::from_str(&w.headers)
                    .map_err(|e| RegistryError::Invalid(format!("dead letter {id}: {e}")))?;
                Ok(DeadLetterRecord {
                    summary: w.row.into(),
                    headers,
                    body: w.body,
                })
            })
            .transpose()
    }

    /// Claims dead letter `id` for a replay at `now`, unless another replay holds a claim
    /// made at or after `stale_before`: a claim older than that is taken as left behind by
    /// a replay that never finished, and is taken over. The claim is one conditional
    /// UPDATE, so that of two replays at once exactly one wins, on either database.
    pub async fn claim_dead_letter_replay(
        &self,
        id: i64,
        now: i64,
        stale_before: i64,
    ) -> Result<DeadLetterClaim, RegistryError> {
        let claim = "UPDATE dead_letters SET replaying_since = $1 \
                     WHERE id = $2 AND (replaying_since IS NULL OR replaying_since < $3)";
        let look = "SELECT replaying_since FROM dead_letters WHERE id = $1";
        // A claim released between the UPDATE and the look (the other replay failed) leaves
        // the letter free: one more try at it, then it counts as held.
        for _ in 0..2 {
            let n = on_db!(&self.db, |pool| sqlx::query(claim)
                .bind(now)
                .bind(id)
                .bind(stale_before)
                .execute(pool)
                .await?
                .rows_affected());
            if n > 0 {
                return Ok(DeadLetterClaim::Claimed(ReplayClaim { id, since: now }));
            }
            let held: Option<(Option<i64>,)> = on_db!(&self.db, |pool| {
                sqlx::query_as(look).bind(id).fetch_optional(pool).await?
            });
            match held {
                None => return Ok(DeadLetterClaim::Missing),
                Some((Some(since),)) => return Ok(DeadLetterClaim::Replaying { since }),
                Some((None,)) => {}
            }
        }
        Ok(DeadLetterClaim::Replaying { since: now })
    }

    /// Gives up `claim` without a replay having been recorded (the request could not be
    /// sent); a claim taken over since is left alone. Whether it was still held.
    pub async fn release_dead_letter_replay(
        &self,
        claim: &ReplayClaim,
    ) -> Result<bool, RegistryError> {
        let sql = "UPDATE dead_letters SET replaying_since = NULL \
                   WHERE id = $1 AND replaying_since = $2";
        let n = on_db!(&self.db, |pool| sqlx::query(sql)
            .bind(claim.id)
            .bind(claim.since)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Records that the replay holding `claim` failed: `tries` more tries, ending in
    /// `failure`, and the claim released (unless another replay took it over since, whose
    /// claim stands). Whether the dead letter was still there.
    pub async fn dead_letter_replay_failed(
        &self,
        claim: &ReplayClaim,
        tries: u32,
        failure: &str,
        at: i64,
    ) -> Result<bool, RegistryError> {
        let sql = "UPDATE dead_letters SET tries = tries + $1, last_failure = $2, \
                   replays = replays + 1, replayed_at = $3, \
                   replaying_since = CASE WHEN replaying_since = $4 THEN NULL \
                   ELSE replaying_since END \
                   WHERE id = $5";
        let n = on_db!(&self.db, |pool| sqlx::query(sql)
            .bind(i64::from(tries))
            .bind(failure)
            .bind(at)
            .bind(claim.since)
            .bind(claim.id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Removes dead letter `id` (replayed, or given up); whether it was there.
    pub async fn delete_dead_letter(&self, id: i64) -> Result<bool, RegistryError> {
        let sql = "DELETE FROM dead_letters WHERE id = $1";
        let n = on_db!(&self.db, |pool| sqlx::query(sql)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }
}
