//! Named leases in the database: one instance of a fleet holds each, renews it while it
//! lives, and another takes it over once it lapses.

use std::time::Duration;

use crate::RegistryError;
use crate::db::{Registry, on_db};

impl Registry {
    /// Takes or renews lease `name` for `holder` until `now + ttl`: true when `holder`
    /// holds it now, false when another holder's lease has not lapsed.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool, RegistryError> {
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let sql = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                   expires_at = excluded.expires_at \
                   WHERE leases.expires_at < $4 OR leases.holder = excluded.holder";
        let n = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Gives lease `name` up if `holder` holds it, so another may take it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), RegistryError> {
        let sql = "DELETE FROM leases WHERE name = $1 AND holder = $2";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Who holds lease `name` and until when (ms), if anyone.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>, RegistryError> {
        let sql = "SELECT holder, expires_at FROM leases WHERE name = $1";
        Ok(on_db!(&self.db, |pool| sqlx::query_as(sql)
            .bind(name)
            .fetch_optional(pool)
            .await?))
    }
}
