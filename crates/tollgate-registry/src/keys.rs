//! API key records: create, read, list, update, revoke, rotate, verify.

use serde::Serialize;
use thiserror::Error;

use crate::RegistryError;
use crate::db::{Registry, on_db};
use crate::key;

/// A key's record as the admin API shows it: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRecord {
    /// Its id (`key_…`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// Who it belongs to; keys of one owner can share limits.
    pub owner: String,
    /// Its tier (`free`, `pro`, …).
    pub tier: String,
    /// What may be shown of the secret (`tg_live_AbCd`).
    pub prefix: String,
    /// Whether it may be used.
    pub status: KeyStatus,
    /// When it stops working (ms since the Unix epoch).
    pub expires_at: Option<i64>,
    /// Free-form metadata (a JSON object).
    pub metadata: serde_json::Value,
    /// Its own limits over its tier's (a JSON object: limit name → fields).
    pub overrides: serde_json::Value,
    /// When it was created (ms).
    pub created_at: i64,
    /// When it last changed (ms).
    pub updated_at: i64,
    /// When a decision was last made with it (ms), as of the last stored usage batch.
    pub last_used_at: Option<i64>,
}

/// Whether a key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Switched off; may be switched on again.
    Disabled,
    /// Revoked for good.
    Revoked,
}

impl KeyStatus {
    fn name(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// A key to create.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Environment in the key's text (`live`, `test`).
    pub env: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Tier.
    pub tier: String,
    /// Expiry (ms), if any.
    pub expires_at: Option<i64>,
    /// Metadata (a JSON object; `null` for none).
    pub metadata: serde_json::Value,
    /// Limit overrides (a JSON object; `null` for none).
    pub overrides: serde_json::Value,
}

/// Changes to a key; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    /// New name.
    pub name: Option<String>,
    /// New tier.
    pub tier: Option<String>,
    /// Switch on or off.
    pub enabled: Option<bool>,
    /// New expiry; `Some(None)` removes it.
    pub expires_at: Option<Option<i64>>,
    /// New metadata.
    pub metadata: Option<serde_json::Value>,
    /// New limit overrides (replacing the old ones).
    pub overrides: Option<serde_json::Value>,
}

/// Which keys to list, a page at a time (by id, after `after`).
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Only this owner's.
    pub owner: Option<String>,
    /// Only this tier's.
    pub tier: Option<String>,
    /// Only those with this status.
    pub status: Option<KeyStatus>,
    /// Ids after this one (the last of the previous page).
    pub after: Option<String>,
    /// At most this many (1 to 1000; default 100).
    pub limit: Option<u32>,
}

/// Why a presented key does not pass.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Malformed, mistyped, unknown, revoked, or a rotated-out secret past its grace.
    #[error("KEY_INVALID")]
    Invalid,
    /// Switched off.
    #[error("KEY_DISABLED")]
    Disabled,
    /// Past its expiry.
    #[error("KEY_EXPIRED")]
    Expired,
    /// The database could not answer.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    owner: String,
    tier: String,
    prefix: String,
    enabled: bool,
    revoked_at: Option<i64>,
    expires_at: Option<i64>,
    metadata: String,
    overrides: String,
    created_at: i64,
    updated_at: i64,
    last_used_at: Option<i64>,
}

impl Row {
    fn record(self) -> KeyRecord {
        let status = if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.enabled {
            KeyStatus::Active
        } else {
            KeyStatus::Disabled
        };
        KeyRecord {
            id: self.id,
            name: self.name,
            owner: self.owner,
            tier: self.tier,
            prefix: self.prefix,
            status,
            expires_at: self.expires_at,
            metadata: serde_json::from_str(&self.metadata).unwrap_or(serde_json::Value::Null),
            overrides: serde_json::from_str(&self.overrides).unwrap_or(serde_json::Value::Null),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_used_at: self.last_used_at,
        }
    }
}

const COLUMNS: &str = "id, name, owner, tier, prefix, enabled, revoked_at, expires_at, metadata, overrides, created_at, updated_at, last_used_at";

fn new_id() -> Result<String, RegistryError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| RegistryError::Invalid(format!("no randomness from the system: {e}")))?;
    Ok(format!("key_{:016x}", u64::from_le_bytes(bytes)))
}

/// A JSON object field as stored; `field` names it in the error.
fn object_text(field: &str, v: &serde_json::Value) -> Result<String, RegistryError> {
    match v {
        serde_json::Value::Null => Ok("{}".into()),
        serde_json::Value::Object(_) => Ok(v.to_string()),
        _ => Err(RegistryError::Invalid(format!(
            "{field} must be a JSON object"
        ))),
    }
}

impl Registry {
    /// Creates a key; returns its record and its secret, which is never shown again.
    pub async fn create_key(
        &self,
        new: &NewKey,
        now: i64,
    ) -> Result<(KeyRecord, String), RegistryError> {
        for (field, value) in [
            ("name", &new.name),
            ("owner", &new.owner),
            ("tier", &new.tier),
        ] {
            if value.is_empty() || value.len() > 200 {
                return Err(RegistryError::Invalid(format!(
                    "{field} must be 1 to 200 characters"
                )));
            }
        }
        let secret = key::generate(&new.env)?;
        let id = new_id()?;
        let metadata = object_text("metadata", &new.metadata)?;
        let overrides = object_text("overrides", &new.overrides)?;
        let hash = self.secret.hash(&secret).to_vec();
        let sql = "INSERT INTO keys (id, name, owner, tier, prefix, hash, enabled, expires_at, metadata, created_at, updated_at, overrides) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(&id)
                .bind(&new.name)
                .bind(&new.owner)
                .bind(&new.tier)
                .bind(key::display_prefix(&secret))
                .bind(&hash)
                .bind(true)
                .bind(new.expires_at)
                .bind(&metadata)
                .bind(now)
                .bind(&overrides)
                .execute(pool)
                .await?
                .rows_affected()
        });
        let record = self
            .get_key(&id)
            .await?
            .ok_or_else(|| RegistryError::Invalid("the new key vanished".into()))?;
        Ok((record, secret))
    }

    /// The key with `id`.
    pub async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, RegistryError> {
        let sql = format!("SELECT {COLUMNS} FROM keys WHERE id = $1");
        let row: Option<Row> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(Row::record))
    }

    /// A page of keys, by id.
    pub async fn list_keys(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, RegistryError> {
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        // Every filter is bound; an absent one matches everything.
        let sql = format!(
            "SELECT {COLUMNS} FROM keys \
             WHERE ($1 IS NULL OR owner = $1) AND ($2 IS NULL OR tier = $2) AND ($3 IS NULL OR id > $3) \
             AND ($4 IS NULL \
                  OR ($4 = 'revoked' AND revoked_at IS NOT NULL) \
                  OR ($4 = 'active' AND revoked_at IS NULL AND enabled = $5) \
                  OR ($4 = 'disabled' AND revoked_at IS NULL AND enabled = $6)) \
             ORDER BY id LIMIT $7"
        );
        let status = filter.status.map(KeyStatus::name);
        let rows: Vec<Row> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(filter.owner.as_deref())
                .bind(filter.tier.as_deref())
                .bind(filter.after.as_deref())
                .bind(status)
                .bind(true)
                .bind(false)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Row::record).collect())
    }

    /// Applies `patch` to a key that is not revoked; the record after, or `None`.
    pub async fn update_key(
        &self,
        id: &str,
        patch: &KeyPatch,
        now: i64,
    ) -> Result<Option<KeyRecord>, RegistryError> {
        let metadata = patch
            .metadata
            .as_ref()
            .map(|m| object_text("metadata", m))
            .transpose()?;
        let overrides = patch
            .overrides
            .as_ref()
            .map(|o| object_text("overrides", o))
            .transpose()?;
        let sql = "UPDATE keys SET \
                   name = COALESCE($1, name), tier = COALESCE($2, tier), enabled = COALESCE($3, enabled), \
                   expires_at = CASE WHEN $4 THEN $5 ELSE expires_at END, \
                   metadata = COALESCE($6, metadata), updated_at = $7, overrides = COALESCE($9, overrides) \
                   WHERE id = $8 AND revoked_at IS NULL";
        let changed = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(patch.name.as_deref())
                .bind(patch.tier.as_deref())
                .bind(patch.enabled)
                .bind(patch.expires_at.is_some())
                .bind(patch.expires_at.flatten())
                .bind(metadata)
                .bind(now)
                .bind(id)
                .bind(overrides)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        self.get_key(id).await
    }

    /// Revokes a key for good; false when there was none to revoke.
    pub async fn revoke_key(&self, id: &str, now: i64) -> Result<bool, RegistryError> {
        let sql = "UPDATE keys SET revoked_at = $1, updated_at = $1, previous_hash = NULL \
                   WHERE id = $2 AND revoked_at IS NULL";
        let changed = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Gives a key a new secret; the old one keeps working for `grace_ms`. Returns the
    /// record and the new secret, shown once.
    pub async fn rotate_key(
        &self,
        id: &str,
        env: &str,
        grace_ms: i64,
        now: i64,
    ) -> Result<Option<(KeyRecord, String)>, RegistryError> {
        let secret = key::generate(env)?;
        let hash = self.secret.hash(&secret).to_vec();
        let sql = "UPDATE keys SET previous_hash = hash, previous_until = $1, hash = $2, prefix = $3, updated_at = $4 \
                   WHERE id = $5 AND revoked_at IS NULL";
        let changed = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(now.saturating_add(grace_ms.max(0)))
                .bind(&hash)
                .bind(key::display_prefix(&secret))
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        Ok(self.get_key(id).await?.map(|r| (r, secret)))
    }

    /// The record of a presented key, if it may be used at `now`.
    pub async fn verify(&self, presented: &str, now: i64) -> Result<KeyRecord, VerifyError> {
        // A mistyped or made-up key costs no lookup.
        if !key::well_formed(presented) {
            return Err(VerifyError::Invalid);
        }
        let hash = self.secret.hash(presented).to_vec();
        let sql = format!(
            "SELECT {COLUMNS}, hash, previous_hash, previous_until FROM keys \
             WHERE hash = $1 OR previous_hash = $1"
        );
        #[derive(sqlx::FromRow)]
        struct Found {
            #[sqlx(flatten)]
            row: Row,
            hash: Vec<u8>,
            previous_hash: Option<Vec<u8>>,
            previous_until: Option<i64>,
        }
        let found: Option<Found> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(&hash)
                .fetch_optional(pool)
                .await
                .map_err(|e| VerifyError::Unavailable(e.to_string()))?
        });
        let Some(found) = found else {
            return Err(VerifyError::Invalid);
        };
        let current = self.secret.matches(presented, &found.hash);
        let previous = found
            .previous_hash
            .as_deref()
            .is_some_and(|h| self.secret.matches(presented, h))
            && found.previous_until.is_some_and(|until| now < until);
        if !current && !previous {
            return Err(VerifyError::Invalid);
        }
        let record = found.row.record();
        match record.status {
            KeyStatus::Revoked => Err(VerifyError::Invalid),
            KeyStatus::Disabled => Err(VerifyError::Disabled),
            KeyStatus::Active if record.expires_at.is_some_and(|e| e <= now) => {
                Err(VerifyError::Expired)
            }
            KeyStatus::Active => Ok(record),
        }
    }
}
