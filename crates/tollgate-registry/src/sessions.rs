//! Dashboard sessions signed out before they expire, for every instance to refuse.

use crate::RegistryError;
use crate::db::{Registry, on_db};

impl Registry {
    /// Records that session `id`, valid until `expires_at` (ms), was signed out, and drops
    /// the records of sessions expired by `now`.
    pub async fn sign_out_session(
        &self,
        id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), RegistryError> {
        let insert = "INSERT INTO signed_out_sessions (session_id, expires_at) VALUES ($1, $2) \
                      ON CONFLICT (session_id) DO NOTHING";
        let prune = "DELETE FROM signed_out_sessions WHERE expires_at <= $1";
        on_db!(&self.db, |pool| {
            sqlx::query(insert)
                .bind(id)
                .bind(expires_at)
                .execute(pool)
                .await?;
            sqlx::query(prune)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Whether session `id` was signed out.
    pub async fn session_signed_out(&self, id: &str) -> Result<bool, RegistryError> {
        let sql = "SELECT 1 FROM signed_out_sessions WHERE session_id = $1";
        let found: Option<(i32,)> = on_db!(&self.db, |pool| sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        Ok(found.is_some())
    }
}
