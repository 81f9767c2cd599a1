//! Key owners' records: who they are and how to reach them (an email address, a webhook).

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::db::{Registry, on_db};

/// An owner, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Owner {
    /// The owner's id: what keys name as their `owner`.
    pub id: String,
    /// A display name.
    pub name: String,
    /// Where outreach mail goes.
    pub email: Option<String>,
    /// Where outreach webhooks go.
    pub webhook_url: Option<String>,
    /// Whether the webhook is signed (the secret itself is never shown).
    pub webhook_signed: bool,
    /// Free-form fields.
    pub metadata: serde_json::Value,
    /// Created at (ms).
    pub created_at: i64,
    /// Last changed at (ms).
    pub updated_at: i64,
}

/// An owner's contact, as written: every field replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwnerContact {
    /// A display name (the id when empty).
    #[serde(default)]
    pub name: String,
    /// Where outreach mail goes.
    #[serde(default)]
    pub email: Option<String>,
    /// Where outreach webhooks go.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The webhook's signing secret (`whsec_…`).
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Free-form fields.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct OwnerRow {
    id: String,
    name: String,
    email: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    metadata: String,
    created_at: i64,
    updated_at: i64,
}

impl From<OwnerRow> for Owner {
    fn from(r: OwnerRow) -> Self {
        Owner {
            id: r.id,
            name: r.name,
            email: r.email,
            webhook_url: r.webhook_url,
            webhook_signed: r.webhook_secret.is_some(),
            metadata: serde_json::from_str(&r.metadata).unwrap_or(serde_json::Value::Null),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str =
    "id, name, email, webhook_url, webhook_secret, metadata, created_at, updated_at";

impl Registry {
    /// Creates or replaces owner `id`'s record; true when it is new.
    pub async fn put_owner(
        &self,
        id: &str,
        contact: &OwnerContact,
        now: i64,
    ) -> Result<bool, RegistryError> {
        if id.is_empty() || id.len() > 200 {
            return Err(RegistryError::Invalid(
                "an owner id is 1 to 200 characters".into(),
            ));
        }
        let name = if contact.name.is_empty() {
            id
        } else {
            contact.name.as_str()
        };
        let metadata = if contact.metadata.is_null() {
            "{}".to_string()
        } else {
            contact.metadata.to_string()
        };
        let existed = self.owner(id).await?.is_some();
        let sql = "INSERT INTO owners (id, name, email, webhook_url, webhook_secret, metadata, \
                   created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, \
                   webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret, \
                   metadata = excluded.metadata, updated_at = excluded.updated_at";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(name)
                .bind(contact.email.as_deref())
                .bind(contact.webhook_url.as_deref())
                .bind(contact.webhook_secret.as_deref())
                .bind(&metadata)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(!existed)
    }

    /// Owner `id`'s record.
    pub async fn owner(&self, id: &str) -> Result<Option<Owner>, RegistryError> {
        Ok(self.owner_row(id).await?.map(Owner::from))
    }

    /// Owner `id`'s contact, secret included: for delivering outreach, never for showing.
    pub async fn owner_contact(&self, id: &str) -> Result<Option<OwnerContact>, RegistryError> {
        Ok(self.owner_row(id).await?.map(|r| OwnerContact {
            name: r.name,
            email: r.email,
            webhook_url: r.webhook_url,
            webhook_secret: r.webhook_secret,
            metadata: serde_json::from_str(&r.metadata).unwrap_or(serde_json::Value::Null),
        }))
    }

    async fn owner_row(&self, id: &str) -> Result<Option<OwnerRow>, RegistryError> {
        let sql = format!("SELECT {COLUMNS} FROM owners WHERE id = $1");
        Ok(on_db!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?))
    }

    /// Owners in id order, after `after`, at most `limit` (1 to 1000).
    pub async fn owners(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Owner>, RegistryError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM owners WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        );
        let rows: Vec<OwnerRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Owner::from).collect())
    }

    /// Removes owner `id`'s record (its keys stay); false when there was none.
    pub async fn delete_owner(&self, id: &str) -> Result<bool, RegistryError> {
        let n = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM owners WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }
}
