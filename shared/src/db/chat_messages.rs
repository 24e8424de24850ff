//! Queries on chat messages. Every query filters by tenant in SQL.
//!
//! Messages are keyed `(tenant_id, chat_id, id)` with UUIDv7 ids, so a chat's history in time
//! order is a range of the primary key, and keyset pages stay exact while messages arrive.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::chat::{ChatMessage, ContentType, MessageContent};
use crate::domain::ids;

/// `sqlx::query_as!` into [`MessageRow`] with its columns spliced in:
/// `message_query!(SELECT "FROM chat_messages WHERE …", args…)` or
/// `message_query!("UPDATE chat_messages … " RETURNING, args…)`.
macro_rules! message_query {
    (SELECT $rest:literal $(+ $more:literal)* $(, $arg:expr)* $(,)?) => {
        message_query!(@columns ["SELECT " +] [+ " " + $rest $(+ $more)* $(, $arg)*])
    };
    ($statement:literal RETURNING $(, $arg:expr)* $(,)?) => {
        message_query!(@columns [$statement + " RETURNING " +] [$(, $arg)*])
    };
    (@columns [$($before:tt)*] [$($after:tt)*]) => {
        sqlx::query_as!(MessageRow, $($before)*
            r#"id, chat_id, sender_id, message, html_content, content_type,
               metadata AS "metadata: Json<BTreeMap<String, String>>", created_at, edited_at"#
            $($after)*)
    };
}

pub(super) struct MessageRow {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: String,
    pub message: String,
    pub html_content: Option<String>,
    pub content_type: String,
    pub metadata: Json<BTreeMap<String, String>>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

impl From<MessageRow> for ChatMessage {
    fn from(row: MessageRow) -> Self {
        Self {
            id: row.id,
            chat_id: row.chat_id,
            sender_id: row.sender_id,
            content: MessageContent {
                message: row.message,
                html_content: row.html_content,
                content_type: row.content_type.parse().unwrap_or(ContentType::Text),
                metadata: row.metadata.0,
            },
            created_at: row.created_at,
            edited_at: row.edited_at,
        }
    }
}

/// Stores a message and records it as the chat's latest activity, in one statement.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    sender_id: &str,
    content: &MessageContent,
) -> sqlx::Result<ChatMessage> {
    let (id, created_at) = ids::new_id();
    sqlx::query!(
        "WITH message AS (INSERT INTO chat_messages (tenant_id, chat_id, id, sender_id, message, \
           html_content, content_type, metadata, created_at) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)) \
         UPDATE chats SET last_activity_at = greatest(last_activity_at, $9) \
         WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        chat_id,
        id,
        sender_id,
        content.message,
        content.html_content.as_deref(),
        content.content_type.as_str(),
        Json(&content.metadata) as _,
        created_at,
    )
    .execute(conn)
    .await?;
    Ok(ChatMessage {
        id,
        chat_id,
        sender_id: sender_id.to_owned(),
        content: content.clone(),
        created_at,
        edited_at: None,
    })
}

/// One message, unless deleted.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id, message_id = %id))]
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<ChatMessage>> {
    let row = message_query!(
        SELECT "FROM chat_messages \
         WHERE tenant_id = $1 AND chat_id = $2 AND id = $3 AND deleted_at IS NULL",
        tenant_id,
        chat_id,
        id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// A range of history: messages with `from <= id < until`, not deleted, at most `limit`. The
/// newest of the range when `oldest_first` is false, the oldest when true; returned newest
/// first either way.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn history(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    from: Option<Uuid>,
    until: Option<Uuid>,
    oldest_first: bool,
    limit: i64,
) -> sqlx::Result<Vec<ChatMessage>> {
    let (from, until) = (from.unwrap_or(Uuid::nil()), until.unwrap_or(Uuid::max()));
    // One statement per direction: an index scan reads the range from the end it starts at.
    macro_rules! range {
        ($order:literal) => {
            message_query!(
                SELECT "FROM chat_messages \
                 WHERE tenant_id = $1 AND chat_id = $2 AND id >= $3 AND id < $4 AND deleted_at IS NULL \
                 ORDER BY id " + $order + " LIMIT $5",
                tenant_id,
                chat_id,
                from,
                until,
                limit,
            )
            .fetch_all(conn)
            .await?
        };
    }
    let rows = if oldest_first {
        range!("ASC")
    } else {
        range!("DESC")
    };
    let mut messages: Vec<ChatMessage> = rows.into_iter().map(Into::into).collect();
    if oldest_first {
        messages.reverse();
    }
    Ok(messages)
}

/// The newest message id of the chat (deleted ones included: reading up to a deleted message
/// is still reading up to there).
pub async fn newest_id(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    // PostgreSQL has no max(uuid); the primary key gives the newest directly anyway.
    sqlx::query_scalar!(
        "SELECT id FROM chat_messages WHERE tenant_id = $1 AND chat_id = $2 \
         ORDER BY id DESC LIMIT 1",
        tenant_id,
        chat_id,
    )
    .fetch_optional(conn)
    .await
}

/// Whether the message is in the chat (deleted or not).
pub async fn exists(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM chat_messages WHERE tenant_id = $1 AND chat_id = $2 AND id = $3)
             AS "exists!""#,
        tenant_id,
        chat_id,
        id,
    )
    .fetch_one(conn)
    .await
}

/// The sender of a message that exists and is not deleted, locking it.
pub async fn sender_for_update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT sender_id FROM chat_messages \
         WHERE tenant_id = $1 AND chat_id = $2 AND id = $3 AND deleted_at IS NULL FOR UPDATE",
        tenant_id,
        chat_id,
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Replaces a message's content and stamps `edited_at`; the edited message.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id, message_id = %id))]
pub async fn edit(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    id: Uuid,
    content: &MessageContent,
) -> sqlx::Result<Option<ChatMessage>> {
    let row = message_query!(
        "UPDATE chat_messages SET message = $4, html_content = $5, content_type = $6, \
         metadata = $7, edited_at = now() \
         WHERE tenant_id = $1 AND chat_id = $2 AND id = $3 AND deleted_at IS NULL" RETURNING,
        tenant_id,
        chat_id,
        id,
        content.message,
        content.html_content.as_deref(),
        content.content_type.as_str(),
        Json(&content.metadata) as _,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Deletes a message: its content is wiped and it disappears from history, while the row
/// stays so receipt cursors pointing at it remain meaningful.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id, message_id = %id))]
pub async fn delete(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE chat_messages SET deleted_at = now(), message = '', html_content = NULL, \
         metadata = '{}' WHERE tenant_id = $1 AND chat_id = $2 AND id = $3",
        tenant_id,
        chat_id,
        id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Retention: removes every message created before `before` for good.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn purge_before(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    before: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM chat_messages WHERE tenant_id = $1 AND chat_id = $2 AND id < $3",
        tenant_id,
        chat_id,
        ids::first_id_at_or_after(before),
    )
    .execute(conn)
    .await?
    .rows_affected())
}
