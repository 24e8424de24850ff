//! What a reconnecting hub client missed: the deliveries to replay when it names the time of
//! the last event it received (`lastEventAt`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::NotificationStatus;
use crate::domain::ids;

/// A notification to replay as a `Message` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedNotification {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// The user's notifications created after `since` or delivered after it, oldest first, at most
/// `limit` of them; only those the user may see (not scheduled, not cancelled).
///
/// "Delivered after" catches what was created earlier but sent late (scheduled notifications,
/// a delayed pipeline). That half cannot use the id range, so the query reads the user's index
/// range (`tenant_id, user_id`): one inbox, never the tenant.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn missed_notifications(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<MissedNotification>> {
    let hidden: Vec<&str> = NotificationStatus::HIDDEN_FROM_USERS
        .iter()
        .map(|status| status.as_str())
        .collect();
    sqlx::query_as!(
        MissedNotification,
        "SELECT id, created_at FROM notifications \
         WHERE tenant_id = $1 AND user_id = $2 AND status <> ALL($3) \
           AND (id >= $4 OR sent_at > $5) \
         ORDER BY id LIMIT $6",
        tenant_id,
        user_id,
        &hidden as &[&str],
        ids::first_id_after(since),
        since,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// A chat message to replay as a `ChatMessage` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedChatMessage {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Messages sent after `since` in the chats the user is a member of now, oldest first, at most
/// `limit` of them (deleted ones left out). Each chat's part is a primary-key range.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn missed_chat_messages(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<MissedChatMessage>> {
    sqlx::query_as!(
        MissedChatMessage,
        "SELECT g.id, g.chat_id, g.created_at FROM chat_members m \
         JOIN chat_messages g ON g.tenant_id = m.tenant_id AND g.chat_id = m.chat_id \
           AND g.id >= $3 AND g.deleted_at IS NULL \
         WHERE m.tenant_id = $1 AND m.user_id = $2 ORDER BY g.id LIMIT $4",
        tenant_id,
        user_id,
        ids::first_id_after(since),
        limit,
    )
    .fetch_all(conn)
    .await
}
