//! Queries on providers. Every query filters by tenant in SQL. Secrets pass through here
//! sealed; [`StoredProvider::open`] unseals them with the installation's key.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::provider::{ProviderKind, ProviderSettings};
use crate::secrets::SecretsKey;

/// A provider as stored: its secret half still sealed.
#[derive(Debug, Clone)]
pub struct StoredProvider {
    pub id: Uuid,
    pub kind: ProviderKind,
    pub name: String,
    pub priority: i32,
    pub enabled: bool,
    pub config: Value,
    pub sealed_secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A provider with its settings readable.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: Uuid,
    pub name: String,
    pub priority: i32,
    pub enabled: bool,
    pub settings: ProviderSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A provider could not be read back: its secret does not open under this key, or its
/// stored settings no longer parse.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error(transparent)]
    Secret(#[from] crate::secrets::Unreadable),
    #[error("the provider's stored settings do not parse: {0}")]
    Settings(#[from] serde_json::Error),
}

impl StoredProvider {
    pub fn open(self, tenant_id: Uuid, key: &SecretsKey) -> Result<Provider, Unreadable> {
        let secret = key.open(tenant_id, self.id, &self.sealed_secret)?;
        Ok(Provider {
            id: self.id,
            name: self.name,
            priority: self.priority,
            enabled: self.enabled,
            settings: ProviderSettings::from_stored(self.kind, self.config, &secret)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

struct Row {
    id: Uuid,
    kind: String,
    name: String,
    priority: i32,
    enabled: bool,
    config: Json<Value>,
    secret: Vec<u8>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for StoredProvider {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            kind: row
                .kind
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            name: row.name,
            priority: row.priority,
            enabled: row.enabled,
            config: row.config.0,
            sealed_secret: row.secret,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// `sqlx::query_as!` into [`Row`]: `provider_query!("WHERE …", args…)`.
macro_rules! provider_query {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"SELECT id, type AS kind, name, priority, enabled, config AS "config: Json<Value>",
                 secret, created_at, updated_at FROM providers "# + $rest,
            $($arg),*
        )
    };
}

/// A provider to store: its settings split and sealed for its row.
pub struct ProviderRow<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub priority: i32,
    pub enabled: bool,
    pub settings: &'a ProviderSettings,
}

/// Stores a new provider; `None` when the tenant has a provider of that name already, or
/// (web push, webhook) one of that kind.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    key: &SecretsKey,
    new: &ProviderRow<'_>,
) -> sqlx::Result<Option<StoredProvider>> {
    let sealed = key.seal(tenant_id, new.id, &new.settings.secret());
    sqlx::query_as!(
        Row,
        r#"INSERT INTO providers (tenant_id, id, type, name, priority, enabled, config, secret)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING
           RETURNING id, type AS kind, name, priority, enabled, config AS "config: Json<Value>",
             secret, created_at, updated_at"#,
        tenant_id,
        new.id,
        new.settings.kind().as_str(),
        new.name,
        new.priority,
        new.enabled,
        Json(new.settings.public()) as _,
        sealed,
    )
    .fetch_optional(conn)
    .await?
    .map(StoredProvider::try_from)
    .transpose()
}

/// Replaces a provider's name, order, switch and settings; `None` when it does not exist or
/// the new name is another provider's.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, provider_id = %new.id))]
pub async fn update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    key: &SecretsKey,
    new: &ProviderRow<'_>,
) -> sqlx::Result<Option<StoredProvider>> {
    let sealed = key.seal(tenant_id, new.id, &new.settings.secret());
    let updated = sqlx::query_as!(
        Row,
        r#"UPDATE providers SET name = $3, priority = $4, enabled = $5, config = $6, secret = $7,
             updated_at = now()
           WHERE tenant_id = $1 AND id = $2
             AND NOT EXISTS (SELECT 1 FROM providers o WHERE o.tenant_id = $1 AND o.name = $3 AND o.id <> $2)
           RETURNING id, type AS kind, name, priority, enabled, config AS "config: Json<Value>",
             secret, created_at, updated_at"#,
        tenant_id,
        new.id,
        new.name,
        new.priority,
        new.enabled,
        Json(new.settings.public()) as _,
        sealed,
    )
    .fetch_optional(conn)
    .await?;
    updated.map(StoredProvider::try_from).transpose()
}

pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<StoredProvider>> {
    provider_query!("WHERE tenant_id = $1 AND id = $2", tenant_id, id)
        .fetch_optional(conn)
        .await?
        .map(StoredProvider::try_from)
        .transpose()
}

/// Every provider of the tenant, in the order they are tried (priority, then age).
pub async fn list(conn: &mut PgConnection, tenant_id: Uuid) -> sqlx::Result<Vec<StoredProvider>> {
    provider_query!(
        "WHERE tenant_id = $1 ORDER BY type, priority, id",
        tenant_id
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(StoredProvider::try_from)
    .collect()
}

/// The enabled providers of one kind, in the order they are tried.
pub async fn enabled(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    kind: ProviderKind,
) -> sqlx::Result<Vec<StoredProvider>> {
    provider_query!(
        "WHERE tenant_id = $1 AND type = $2 AND enabled ORDER BY priority, id",
        tenant_id,
        kind.as_str(),
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(StoredProvider::try_from)
    .collect()
}

/// Whether the tenant has a provider named `name`.
pub async fn name_taken(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    name: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM providers WHERE tenant_id = $1 AND name = $2) AS "taken!""#,
        tenant_id,
        name,
    )
    .fetch_one(conn)
    .await
}

pub async fn delete(conn: &mut PgConnection, tenant_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM providers WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        id
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(deleted == 1)
}
