//! Requests per service-level objective and minute, written by every instance and summed
//! over the fleet.

use sqlx::Row as _;

use crate::RegistryError;
use crate::db::{Registry, on_db};

/// One instance's counts for one objective and minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SloMinute {
    /// The minute's start (ms since the epoch).
    pub minute: i64,
    /// Requests that met the objective.
    pub good: u64,
    /// All requests.
    pub total: u64,
}

fn db_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Registry {
    /// Stores `instance`'s counts of `objective`, replacing what it wrote before for the
    /// same minutes (its counts of a minute only grow, so writing them again is harmless).
    pub async fn put_slo_minutes(
        &self,
        objective: &str,
        instance: &str,
        minutes: &[SloMinute],
    ) -> Result<(), RegistryError> {
        let sql = "INSERT INTO slo_minutes (objective, minute, instance, good, total) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (objective, minute, instance) \
                   DO UPDATE SET good = excluded.good, total = excluded.total";
        on_db!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for m in minutes {
                sqlx::query(sql)
                    .bind(objective)
                    .bind(m.minute)
                    .bind(instance)
                    .bind(db_count(m.good))
                    .bind(db_count(m.total))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The fleet's good and total requests of `objective` in `[from, to)`.
    pub async fn slo_sums(
        &self,
        objective: &str,
        from: i64,
        to: i64,
    ) -> Result<(u64, u64), RegistryError> {
        let sums = self.slo_sums_since(objective, &[from], to).await?;
        Ok(sums.first().copied().unwrap_or((0, 0)))
    }

    /// The fleet's good and total requests of `objective` in `[from, to)` for each of
    /// `froms`, in one query: windows read together then agree with each other, where one
    /// query each could straddle an instance's write and see it in the long windows only.
    pub async fn slo_sums_since(
        &self,
        objective: &str,
        froms: &[i64],
        to: i64,
    ) -> Result<Vec<(u64, u64)>, RegistryError> {
        let Some(&earliest) = froms.iter().min() else {
            return Ok(Vec::new());
        };
        // $1 the objective, $2 the end, $3 the earliest start, then two per window (each
        // placeholder once: SQLite and PostgreSQL number them alike that way).
        let mut sql = String::from("SELECT ");
        let mut param = 3usize;
        for (i, _) in froms.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let (g, t) = (param.saturating_add(1), param.saturating_add(2));
            param = t;
            sql.push_str(&format!(
                "CAST(COALESCE(SUM(CASE WHEN minute >= ${g} THEN good ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN minute >= ${t} THEN total ELSE 0 END), 0) AS BIGINT)"
            ));
        }
        sql.push_str(" FROM slo_minutes WHERE objective = $1 AND minute < $2 AND minute >= $3");
        let counts: Vec<i64> = on_db!(&self.db, |pool| {
            let mut q = sqlx::query(&sql).bind(objective).bind(to).bind(earliest);
            for &from in froms {
                q = q.bind(from).bind(from);
            }
            let row = q.fetch_one(pool).await?;
            (0..froms.len().saturating_mul(2))
                .map(|i| row.try_get::<i64, _>(i))
                .collect::<Result<_, _>>()?
        });
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(counts
            .chunks(2)
            .map(|c| match c {
                [g, t] => (count(*g), count(*t)),
                _ => (0, 0),
            })
            .collect())
    }

    /// Deletes minutes before `before`; gives how many went.
    pub async fn prune_slo(&self, before: i64) -> Result<u64, RegistryError> {
        let sql = "DELETE FROM slo_minutes WHERE minute < $1";
        Ok(on_db!(&self.db, |pool| sqlx::query(sql)
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
