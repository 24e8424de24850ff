//! Chat broadcasts: one message into many chats, written a chunk of targets at a time.
//!
//! Each chunk is one transaction: the broadcast row is locked, the next targets after the
//! stored cursor are read, missing direct chats are created, one message per target chat is
//! inserted in ONE statement (a repeat is skipped by the `(tenant_id, broadcast_id, chat_id)`
//! unique index) and the cursor advances. A job that runs twice finds the cursor moved; a worker
//! killed mid-chunk rolls back and the chunk is redone whole.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::chat::{
    ChatBroadcastStatus, ContentType, MemberRole, MessageContent, NewChatBroadcast, direct_key,
};
use crate::domain::ids;

/// A stored chat broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatBroadcast {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub sender_id: String,
    pub content: MessageContent,
    pub status: ChatBroadcastStatus,
    pub total_targets: i32,
    pub sent: i32,
    /// The last target position done.
    pub cursor: i32,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

struct Row {
    tenant_id: Uuid,
    id: Uuid,
    sender_id: String,
    message: String,
    html_content: Option<String>,
    content_type: String,
    metadata: Json<BTreeMap<String, String>>,
    status: String,
    total_targets: i32,
    sent: i32,
    cursor: i32,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

impl From<Row> for ChatBroadcast {
    fn from(row: Row) -> Self {
        Self {
            tenant_id: row.tenant_id,
            id: row.id,
            sender_id: row.sender_id,
            content: MessageContent {
                message: row.message,
                html_content: row.html_content,
                content_type: row.content_type.parse().unwrap_or(ContentType::Text),
                metadata: row.metadata.0,
            },
            status: row.status.parse().unwrap_or(ChatBroadcastStatus::Queued),
            total_targets: row.total_targets,
            sent: row.sent,
            cursor: row.cursor,
            created_at: row.created_at,
            completed_at: row.completed_at,
        }
    }
}

/// Stores a broadcast and its numbered targets (users first, then group chats), each in one
/// statement.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    sender_id: &str,
    new: &NewChatBroadcast,
) -> sqlx::Result<ChatBroadcast> {
    let (id, created_at) = ids::new_id();
    let total = i32::try_from(new.user_ids.len() + new.chat_ids.len()).unwrap_or(i32::MAX);
    let content = &new.content;
    sqlx::query!(
        "INSERT INTO chat_broadcasts (tenant_id, id, sender_id, message, html_content, \
         content_type, metadata, status, total_targets, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'Queued', $8, $9, $9)",
        tenant_id,
        id,
        sender_id,
        content.message,
        content.html_content.as_deref(),
        content.content_type.as_str(),
        Json(&content.metadata) as _,
        total,
        created_at,
    )
    .execute(&mut *conn)
    .await?;
    // The casts name the types a UNION cannot infer for the query's description.
    sqlx::query!(
        "INSERT INTO chat_broadcast_targets (tenant_id, broadcast_id, position, user_id, chat_id) \
         SELECT $1::uuid, $2::uuid, position, user_id, NULL \
           FROM unnest($3::text[]) WITH ORDINALITY AS t(user_id, position) \
         UNION ALL \
         SELECT $1, $2, cardinality($3::text[]) + position, NULL, chat_id \
           FROM unnest($4::uuid[]) WITH ORDINALITY AS t(chat_id, position)",
        tenant_id,
        id,
        &new.user_ids[..],
        &new.chat_ids[..],
    )
    .execute(conn)
    .await?;
    Ok(ChatBroadcast {
        tenant_id,
        id,
        sender_id: sender_id.to_owned(),
        content: content.clone(),
        status: ChatBroadcastStatus::Queued,
        total_targets: total,
        sent: 0,
        cursor: 0,
        created_at,
        completed_at: None,
    })
}

/// The chats among `chat_ids` that `user_id` is not a member of (or that do not exist).
pub async fn chats_not_joined(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    chat_ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM unnest($3::uuid[]) AS id WHERE NOT EXISTS (SELECT 1 FROM chat_members m
           WHERE m.tenant_id = $1 AND m.chat_id = id AND m.user_id = $2) ORDER BY id"#,
        tenant_id,
        user_id,
        chat_ids,
    )
    .fetch_all(conn)
    .await
}

/// One broadcast; with `lock`, the row stays locked until the transaction ends.
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<ChatBroadcast>> {
    // One statement per lock mode, the same columns in both.
    macro_rules! get {
        ($lock:literal) => {
            sqlx::query_as!(
                Row,
                r#"SELECT tenant_id, id, sender_id, message, html_content, content_type,
                     metadata AS "metadata: Json<BTreeMap<String, String>>", status,
                     total_targets, sent, cursor, created_at, completed_at
                   FROM chat_broadcasts WHERE tenant_id = $1 AND id = $2"#
                    + $lock,
                tenant_id,
                id,
            )
            .fetch_optional(conn)
            .await?
        };
    }
    let row = if lock { get!(" FOR UPDATE") } else { get!("") };
    Ok(row.map(Into::into))
}

/// A message written by a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub chat_id: Uuid,
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// What one chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub written: Vec<Written>,
    /// The cursor after this chunk.
    pub cursor: i32,
    pub finished: bool,
}

/// Writes the next `limit` targets of a broadcast locked by the caller (see the module docs).
#[tracing::instrument(skip_all, fields(broadcast_id = %broadcast.id))]
pub async fn send_chunk(
    conn: &mut PgConnection,
    broadcast: &ChatBroadcast,
    limit: i64,
) -> sqlx::Result<Chunk> {
    let tenant_id = broadcast.tenant_id;
    let mut targets = sqlx::query!(
        "SELECT position, user_id, chat_id FROM chat_broadcast_targets \
         WHERE tenant_id = $1 AND broadcast_id = $2 AND position > $3 ORDER BY position LIMIT $4",
        tenant_id,
        broadcast.id,
        broadcast.cursor,
        limit + 1,
    )
    .fetch_all(&mut *conn)
    .await?;
    let finished = targets.len() as i64 <= limit;
    targets.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let cursor = targets.last().map_or(broadcast.cursor, |t| t.position);
    let peers: Vec<String> = targets.iter().filter_map(|t| t.user_id.clone()).collect();
    let groups: Vec<Uuid> = targets.iter().filter_map(|t| t.chat_id).collect();

    let mut chat_ids = direct_chats(conn, broadcast, &peers).await?;
    // The sender may have left a group since the request: only chats they still belong to.
    chat_ids.extend(joined(conn, tenant_id, &broadcast.sender_id, &groups).await?);
    // Two broadcasts writing into the same chats at once update their `last_activity_at`: taking
    // the rows' locks in id order first makes the second wait for the first instead of
    // deadlocking with it.
    sqlx::query!(
        "SELECT FROM chats WHERE tenant_id = $1 AND id = ANY ($2) ORDER BY id FOR NO KEY UPDATE",
        tenant_id,
        &chat_ids[..],
    )
    .execute(&mut *conn)
    .await?;
    let message_ids: Vec<Uuid> = chat_ids.iter().map(|_| ids::new_id().0).collect();
    let created_at: Vec<DateTime<Utc>> =
        message_ids.iter().map(|id| ids::created_at(*id)).collect();
    let content = &broadcast.content;
    let written = sqlx::query_as!(
        Written,
        r#"WITH written AS (INSERT INTO chat_messages (tenant_id, chat_id, id, sender_id, message,
             html_content, content_type, metadata, broadcast_id, created_at)
             SELECT $1, chat_id, id, $4, $5, $6, $7, $8, $9, created_at
             FROM unnest($2::uuid[], $3::uuid[], $10::timestamptz[]) AS m(chat_id, id, created_at)
             ON CONFLICT (tenant_id, broadcast_id, chat_id) WHERE broadcast_id IS NOT NULL DO NOTHING
             RETURNING chat_id, id, created_at),
           touched AS (UPDATE chats c SET last_activity_at = greatest(c.last_activity_at, w.created_at)
             FROM written w WHERE c.tenant_id = $1 AND c.id = w.chat_id)
           SELECT chat_id AS "chat_id!", id AS "id!", created_at AS "created_at!" FROM written"#,
        tenant_id,
        &chat_ids[..],
        &message_ids[..],
        broadcast.sender_id,
        content.message,
        content.html_content.as_deref(),
        content.content_type.as_str(),
        Json(&content.metadata) as _,
        broadcast.id,
        &created_at[..],
    )
    .fetch_all(&mut *conn)
    .await?;
    let status = if finished {
        ChatBroadcastStatus::Completed
    } else {
        ChatBroadcastStatus::Sending
    };
    sqlx::query!(
        "UPDATE chat_broadcasts SET cursor = $3, sent = sent + $4, status = $5, updated_at = now(), \
         completed_at = CASE WHEN $6 THEN now() END WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        broadcast.id,
        cursor,
        i32::try_from(targets.len()).unwrap_or(i32::MAX),
        status.as_str(),
        finished,
    )
    .execute(conn)
    .await?;
    Ok(Chunk {
        written,
        cursor,
        finished,
    })
}

/// The sender's direct chats with each of `peers`, creating the missing ones (one statement for
/// the chats, one for their members).
async fn direct_chats(
    conn: &mut PgConnection,
    broadcast: &ChatBroadcast,
    peers: &[String],
) -> sqlx::Result<Vec<Uuid>> {
    if peers.is_empty() {
        return Ok(Vec::new());
    }
    let tenant_id = broadcast.tenant_id;
    let sender = broadcast.sender_id.as_str();
    // Keys in order: concurrent inserts of the same keys then wait for each other in one
    // order and cannot deadlock.
    let mut peer_of: Vec<(String, &str)> = peers
        .iter()
        .map(|peer| (direct_key(sender, peer), peer.as_str()))
        .collect();
    peer_of.sort_unstable();
    let keys: Vec<&str> = peer_of.iter().map(|(key, _)| key.as_str()).collect();
    let new_ids: Vec<Uuid> = peers.iter().map(|_| ids::new_id().0).collect();
    let created = sqlx::query!(
        r#"INSERT INTO chats (tenant_id, id, type, direct_key, created_by, created_at, updated_at,
             last_activity_at)
           SELECT $1, id, 'Direct', key, $4, now(), now(), now()
             FROM unnest($2::uuid[], $3::text[]) AS c(id, key)
           ON CONFLICT (tenant_id, direct_key) WHERE direct_key IS NOT NULL DO NOTHING
           RETURNING id, direct_key AS "direct_key!""#,
        tenant_id,
        &new_ids[..],
        &keys as &[&str],
        sender,
    )
    .fetch_all(&mut *conn)
    .await?;
    if !created.is_empty() {
        let peer_of: HashMap<&str, &str> = peer_of
            .iter()
            .map(|(key, peer)| (key.as_str(), *peer))
            .collect();
        let (chats, members): (Vec<Uuid>, Vec<&str>) = created
            .iter()
            .flat_map(|chat| {
                [
                    (chat.id, sender),
                    (chat.id, peer_of[chat.direct_key.as_str()]),
                ]
            })
            .unzip();
        sqlx::query!(
            "INSERT INTO chat_members (tenant_id, chat_id, user_id, role) \
             SELECT $1, chat_id, user_id, $4 FROM unnest($2::uuid[], $3::text[]) AS m(chat_id, user_id) \
             ON CONFLICT DO NOTHING",
            tenant_id,
            &chats[..],
            &members as &[&str],
            MemberRole::Member.as_str(),
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query_scalar!(
        "SELECT id FROM chats WHERE tenant_id = $1 AND direct_key = ANY($2)",
        tenant_id,
        &keys as &[&str],
    )
    .fetch_all(conn)
    .await
}

/// The chats among `chat_ids` that `user_id` belongs to.
async fn joined(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    chat_ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    if chat_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar!(
        "SELECT chat_id FROM chat_members WHERE tenant_id = $1 AND user_id = $2 \
         AND chat_id = ANY($3)",
        tenant_id,
        user_id,
        chat_ids,
    )
    .fetch_all(conn)
    .await
}
