//! Read and delivery receipts: each member's two cursors in a chat, the log of their moves
//! ("message info"), and the unread counts derived from them.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// When one member first received and first read a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReceipt {
    pub user_id: String,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Moves `user_id`'s delivered cursor (and with `read`, the read cursor too: reading implies
/// delivery) forward to `up_to`, logging each move in `chat_receipts` for "message info".
/// Cursors never move backwards. Returns whether the read cursor moved.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn advance(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    user_id: &str,
    up_to: Uuid,
    read: bool,
) -> sqlx::Result<bool> {
    let current = sqlx::query!(
        "SELECT last_delivered_message_id, last_read_message_id FROM chat_members \
         WHERE tenant_id = $1 AND chat_id = $2 AND user_id = $3 FOR UPDATE",
        tenant_id,
        chat_id,
        user_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(current) = current else {
        return Ok(false);
    };
    let behind = |cursor: Option<Uuid>| cursor.is_none_or(|id| id < up_to);
    let moves_delivered = behind(current.last_delivered_message_id);
    let moves_read = read && behind(current.last_read_message_id);
    if !moves_delivered && !moves_read {
        return Ok(false);
    }
    let kinds: Vec<bool> = [(moves_delivered, false), (moves_read, true)]
        .into_iter()
        .filter_map(|(moves, kind)| moves.then_some(kind))
        .collect();
    sqlx::query!(
        "WITH moved AS (UPDATE chat_members SET \
           last_delivered_message_id = CASE WHEN $5 THEN $4 ELSE last_delivered_message_id END, \
           last_delivered_at = CASE WHEN $5 THEN now() ELSE last_delivered_at END, \
           last_read_message_id = CASE WHEN $6 THEN $4 ELSE last_read_message_id END, \
           last_read_at = CASE WHEN $6 THEN now() ELSE last_read_at END \
           WHERE tenant_id = $1 AND chat_id = $2 AND user_id = $3) \
         INSERT INTO chat_receipts (tenant_id, chat_id, user_id, up_to_message_id, read, at) \
         SELECT $1, $2, $3, $4, kind, now() FROM unnest($7::boolean[]) AS kind \
         ON CONFLICT DO NOTHING",
        tenant_id,
        chat_id,
        user_id,
        up_to,
        moves_delivered,
        moves_read,
        &kinds[..],
    )
    .execute(conn)
    .await?;
    Ok(moves_read)
}

/// Messages by others, not deleted, after `user_id`'s read cursor.
pub async fn unread_count(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    user_id: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM chat_messages u JOIN chat_members m
             ON m.tenant_id = u.tenant_id AND m.chat_id = u.chat_id AND m.user_id = $3
           WHERE u.tenant_id = $1 AND u.chat_id = $2
             AND u.id > coalesce(m.last_read_message_id, '00000000-0000-0000-0000-000000000000')
             AND u.sender_id <> $3 AND u.deleted_at IS NULL"#,
        tenant_id,
        chat_id,
        user_id,
    )
    .fetch_one(conn)
    .await
}

/// `user_id`'s read cursor in the chat.
pub async fn last_read(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    user_id: &str,
) -> sqlx::Result<Option<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT last_read_message_id FROM chat_members \
         WHERE tenant_id = $1 AND chat_id = $2 AND user_id = $3",
        tenant_id,
        chat_id,
        user_id,
    )
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// When each member but the sender first received and first read `message_id`: the first
/// receipt whose cursor reached it (cursors only move forward, so that is the earliest). In
/// user id order, at most `limit` members after `after`.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn message_info(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    message_id: Uuid,
    sender_id: &str,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<MemberReceipt>> {
    sqlx::query_as!(
        MemberReceipt,
        "SELECT m.user_id, \
           (SELECT min(r.at) FROM chat_receipts r WHERE r.tenant_id = m.tenant_id \
              AND r.chat_id = m.chat_id AND r.user_id = m.user_id \
              AND r.up_to_message_id >= $3) AS delivered_at, \
           (SELECT min(r.at) FROM chat_receipts r WHERE r.tenant_id = m.tenant_id \
              AND r.chat_id = m.chat_id AND r.user_id = m.user_id AND r.read \
              AND r.up_to_message_id >= $3) AS read_at \
         FROM chat_members m WHERE m.tenant_id = $1 AND m.chat_id = $2 AND m.user_id <> $4 \
         AND ($5::text IS NULL OR m.user_id > $5) ORDER BY m.user_id LIMIT $6",
        tenant_id,
        chat_id,
        message_id,
        sender_id,
        after,
        limit,
    )
    .fetch_all(conn)
    .await
}
