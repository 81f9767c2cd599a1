//! The database: SQLite or PostgreSQL, migrated at start.

use std::str::FromStr;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::RegistryError;
use crate::key::KeySecret;

/// How long a query waits for a connection: a database that is down is reported within
/// this, well inside a request's own timeout, instead of after sqlx's default 30 s.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// One of the supported databases.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds: the same SQL text serves
/// both (placeholders `$1`, `$2`… in order of first use, which SQLite numbers alike).
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// The records, and the secret keys are hashed under.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) db: Db,
    pub(crate) secret: KeySecret,
}

impl Registry {
    /// Opens `url` (`sqlite://path`, created when missing, or `postgres://…`) and brings its
    /// schema up to date.
    pub async fn open(url: &str, secret: KeySecret) -> Result<Self, RegistryError> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Db::Sqlite(pool)
        } else {
            return Err(RegistryError::Invalid(format!(
                "{url:?} is not a database URL (sqlite://PATH or postgres://…)"
            )));
        };
        Ok(Registry { db, secret })
    }

    /// The keyed hash of a presented key: what caches may hold in its place.
    pub fn key_hash(&self, presented: &str) -> crate::key::KeyHash {
        self.secret.hash(presented)
    }

    /// Which database this is: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}
