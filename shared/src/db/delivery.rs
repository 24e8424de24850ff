//! Delivering one notification to the inbox (the `Deliver` job).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::notifications::notification_query;
use crate::domain::{Notification, NotificationType};

/// Marks a notification delivered. `None` when there is nothing to do (already delivered,
/// cancelled, deleted — which makes the job idempotent — or scheduled for later).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %id))]
pub async fn mark_sent(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Notification>> {
    let row = notification_query!(
        "UPDATE notifications SET status = 'Sent', sent_at = now() \
         WHERE tenant_id = $1 AND id = $2 \
           AND (status = 'Pending' OR (status = 'Scheduled' AND scheduled_for <= now()))" RETURNING,
        tenant_id,
        id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    sqlx::query!(
        "UPDATE schedules SET state = 'Done', updated_at = now() \
         WHERE tenant_id = $1 AND kind = 'Notification' AND target_id = $2 AND state IN ('Pending', 'Queued')",
        tenant_id,
        id,
    )
    .execute(conn)
    .await?;
    row.try_into().map(Some)
}

/// Whether the recipient accepts email of this type (no profile means yes).
pub async fn email_allowed(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    kind: NotificationType,
) -> sqlx::Result<bool> {
    let allowed = sqlx::query_scalar!(
        r#"SELECT email_enabled AND NOT ($3 = ANY (email_opt_out)) AS "allowed!"
           FROM recipients WHERE tenant_id = $1 AND user_id = $2"#,
        tenant_id,
        user_id,
        kind.as_str(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(allowed.unwrap_or(true))
}

/// Records that a notification is to be emailed; `false` when it already was recorded.
pub async fn create_email_delivery(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
    email: &str,
) -> sqlx::Result<bool> {
    let created = sqlx::query!(
        "INSERT INTO email_deliveries (tenant_id, notification_id, email) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
        tenant_id,
        notification_id,
        email,
    )
    .execute(conn)
    .await?;
    Ok(created.rows_affected() == 1)
}
