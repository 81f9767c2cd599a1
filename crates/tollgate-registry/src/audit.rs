//! The audit log: every change made through the admin API — who, what, when, from where.

use serde::Serialize;

use crate::RegistryError;
use crate::db::{Registry, on_db};

/// One admin change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// When (ms since the Unix epoch).
    pub at: i64,
    /// Who: the admin token's name or the JWT's subject.
    pub actor: String,
    /// The role they acted in.
    pub role: String,
    /// What: the method and route (`POST /v1/keys`).
    pub action: String,
    /// On what: the request path (`/v1/keys/key_…/rotate`).
    pub target: String,
    /// From where: the client address.
    pub source: String,
    /// The answer's HTTP status.
    pub status: i64,
}

/// A stored entry with its id for paging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Its id.
    pub id: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// Which entries to list, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor's.
    pub actor: Option<String>,
    /// From this instant (ms, inclusive).
    pub from: Option<i64>,
    /// Until this instant (ms, exclusive).
    pub to: Option<i64>,
    /// Ids after this one.
    pub after: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    pub limit: Option<u32>,
}

impl Registry {
    /// Records an admin change.
    pub async fn audit(&self, e: &AuditEntry) -> Result<(), RegistryError> {
        let sql = "INSERT INTO audit (at, actor, role, action, target, source, status) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.role)
                .bind(&e.action)
                .bind(&e.target)
                .bind(&e.source)
                .bind(e.status)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// A page of audit entries, oldest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, RegistryError> {
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let sql = "SELECT id, at, actor, role, action, target, source, status FROM audit \
                   WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR at >= $2) \
                   AND ($3 IS NULL OR at < $3) AND ($4 IS NULL OR id > $4) \
                   ORDER BY id LIMIT $5";
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            #[sqlx(flatten)]
            entry: AuditEntry,
        }
        let rows: Vec<Row> = on_db!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(filter.actor.as_deref())
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| AuditRecord {
                id: r.id,
                entry: r.entry,
            })
            .collect())
    }
}
