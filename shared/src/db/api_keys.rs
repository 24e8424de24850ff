//! API keys of tenants (hash and display prefix only).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::api_key::GeneratedApiKey;

/// What operators see of a key: never the key itself.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An unrevoked key found by its prefix, with the hash to compare against.
#[derive(Debug, Clone)]
pub struct ActiveKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub key_hash: Vec<u8>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    key: &GeneratedApiKey,
) -> sqlx::Result<ApiKeyRecord> {
    sqlx::query_as!(
        ApiKeyRecord,
        "INSERT INTO api_keys (id, tenant_id, prefix, key_hash) VALUES ($1, $2, $3, $4) \
         RETURNING id, tenant_id, prefix, created_at, last_used_at, revoked_at",
        Uuid::now_v7(),
        tenant_id,
        key.prefix,
        key.hash,
    )
    .fetch_one(conn)
    .await
}

#[tracing::instrument(skip_all)]
pub async fn find_active_by_prefix(pool: &PgPool, prefix: &str) -> sqlx::Result<Option<ActiveKey>> {
    sqlx::query_as!(
        ActiveKey,
        "SELECT id, tenant_id, key_hash, last_used_at FROM api_keys \
         WHERE prefix = $1 AND revoked_at IS NULL",
        prefix,
    )
    .fetch_optional(pool)
    .await
}

/// Records use at minute granularity: a write per request would cost more than the lookup.
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn touch_last_used(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE api_keys SET last_used_at = now() WHERE id = $1 \
         AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        id,
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn list(conn: &mut PgConnection, tenant_id: Uuid) -> sqlx::Result<Vec<ApiKeyRecord>> {
    sqlx::query_as!(
        ApiKeyRecord,
        "SELECT id, tenant_id, prefix, created_at, last_used_at, revoked_at FROM api_keys \
         WHERE tenant_id = $1 ORDER BY created_at, id",
        tenant_id,
    )
    .fetch_all(conn)
    .await
}

/// Revokes a key; `None` when no such key exists. Revoking twice keeps the first time.
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn revoke(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<ApiKeyRecord>> {
    sqlx::query_as!(
        ApiKeyRecord,
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 \
         RETURNING id, tenant_id, prefix, created_at, last_used_at, revoked_at",
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Ids of the keys revoked within the last `window_secs`, across tenants: the tokens they
/// minted must be refused. Older revocations need not be listed once `window_secs` exceeds the
/// longest token lifetime, which keeps the list short.
#[tracing::instrument(skip_all)]
pub async fn revoked_within(pool: &PgPool, window_secs: u64) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM api_keys \
         WHERE revoked_at IS NOT NULL AND revoked_at > now() - make_interval(secs => $1)",
        window_secs as f64,
    )
    .fetch_all(pool)
    .await
}
