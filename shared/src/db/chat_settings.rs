//! A tenant's chat settings (one row per tenant that changed them). Every query filters by
//! tenant in SQL.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::chat::ChatSettings;

/// The tenant's settings, or the defaults when it never set any.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn get(conn: &mut PgConnection, tenant_id: Uuid) -> sqlx::Result<ChatSettings> {
    let remote_images = sqlx::query_scalar!(
        "SELECT remote_images FROM chat_settings WHERE tenant_id = $1",
        tenant_id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(
        remote_images.map_or_else(ChatSettings::default, |remote_images| ChatSettings {
            remote_images,
        }),
    )
}

/// Replaces the tenant's settings.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn put(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    settings: &ChatSettings,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO chat_settings (tenant_id, remote_images) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET remote_images = EXCLUDED.remote_images, \
         updated_at = now()",
        tenant_id,
        settings.remote_images,
    )
    .execute(conn)
    .await?;
    Ok(())
}
