//! Queries on chats and their members. Every query filters by tenant in SQL.
//!
//! A chat seen by a user carries that user's role and unread count, and the chat's newest
//! message: [`ChatView`]. Unread counts are derived from the member's read cursor on every read
//! (an index range on the messages' primary key), never stored, so they cannot drift.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::chat::{Chat, ChatMember, ChatMessage, ChatType, MemberRole, NewChat};
use crate::domain::ids;

use super::chat_messages::MessageRow;

/// A chat as one user (or the tenant, with no user) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatView {
    pub chat: Chat,
    /// The user's role; `None` for the tenant.
    pub role: Option<MemberRole>,
    pub unread_count: i64,
    pub last_message: Option<ChatMessage>,
}

/// What a caller may do in a chat: its type, and the caller's role (`None` for the tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub chat_type: ChatType,
    pub role: Option<MemberRole>,
}

/// `sqlx::query_as!` into [`ViewRow`]: chat `c`, the viewer's membership `m` (NULL columns for
/// the tenant) and the chat's newest message `lm`. `view_query!(FROM "…" WHERE "…", args…)`
/// puts the columns before the `FROM` clause, which must name `c` and `m`, and the join of the
/// newest message between it and the `WHERE` clause. Unread counts are an index range on the
/// messages' primary key past the viewer's read cursor.
macro_rules! view_query {
    (FROM $from:literal WHERE $where:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ViewRow,
            r#"SELECT c.id, c.type AS chat_type, c.name,
                 c.metadata AS "metadata: Json<BTreeMap<String, String>>", c.created_by,
                 c.created_at, c.updated_at, c.last_activity_at,
                 (SELECT count(*) FROM chat_members x WHERE x.tenant_id = c.tenant_id AND x.chat_id = c.id)
                   AS "member_count!",
                 m.role AS "role?",
                 CASE WHEN m.user_id IS NULL THEN 0 ELSE
                   (SELECT count(*) FROM chat_messages u WHERE u.tenant_id = c.tenant_id AND u.chat_id = c.id
                    AND u.id > coalesce(m.last_read_message_id, '00000000-0000-0000-0000-000000000000')
                    AND u.sender_id <> m.user_id AND u.deleted_at IS NULL) END AS "unread_count!",
                 lm.id AS "lm_id?", lm.chat_id AS "lm_chat_id?", lm.sender_id AS "lm_sender_id?",
                 lm.message AS "lm_message?", lm.html_content AS "lm_html_content?",
                 lm.content_type AS "lm_content_type?",
                 lm.metadata AS "lm_metadata?: Json<BTreeMap<String, String>>",
                 lm.created_at AS "lm_created_at?", lm.edited_at AS "lm_edited_at?"
               FROM "# + $from + r#"
               LEFT JOIN LATERAL (SELECT g.id, g.chat_id, g.sender_id, g.message, g.html_content,
                   g.content_type, g.metadata, g.created_at, g.edited_at FROM chat_messages g
                 WHERE g.tenant_id = c.tenant_id AND g.chat_id = c.id AND g.deleted_at IS NULL
                 ORDER BY g.id DESC LIMIT 1) lm ON true
               WHERE "# + $where,
            $($arg),*
        )
    };
}

/// A chat as a viewer sees it; the `lm_*` columns are all NULL when the chat has no message.
struct ViewRow {
    id: Uuid,
    chat_type: String,
    name: Option<String>,
    metadata: Json<BTreeMap<String, String>>,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    member_count: i64,
    role: Option<String>,
    unread_count: i64,
    lm_id: Option<Uuid>,
    lm_chat_id: Option<Uuid>,
    lm_sender_id: Option<String>,
    lm_message: Option<String>,
    lm_html_content: Option<String>,
    lm_content_type: Option<String>,
    lm_metadata: Option<Json<BTreeMap<String, String>>>,
    lm_created_at: Option<DateTime<Utc>>,
    lm_edited_at: Option<DateTime<Utc>>,
}

impl ViewRow {
    /// The newest message, moved out of the `lm_*` columns.
    fn take_last_message(&mut self) -> Option<ChatMessage> {
        let row = MessageRow {
            id: self.lm_id?,
            chat_id: self.lm_chat_id?,
            sender_id: self.lm_sender_id.take()?,
            message: self.lm_message.take()?,
            html_content: self.lm_html_content.take(),
            content_type: self.lm_content_type.take()?,
            metadata: self.lm_metadata.take()?,
            created_at: self.lm_created_at?,
            edited_at: self.lm_edited_at,
        };
        Some(row.into())
    }
}

impl From<ViewRow> for ChatView {
    fn from(mut row: ViewRow) -> Self {
        let last_message = row.take_last_message();
        Self {
            chat: Chat {
                id: row.id,
                chat_type: parse_type(&row.chat_type),
                name: row.name,
                metadata: row.metadata.0,
                created_by: row.created_by,
                created_at: row.created_at,
                updated_at: row.updated_at,
                last_activity_at: row.last_activity_at,
                member_count: row.member_count,
            },
            role: row.role.as_deref().map(parse_role),
            unread_count: row.unread_count,
            last_message,
        }
    }
}

fn parse_type(value: &str) -> ChatType {
    value.parse().unwrap_or(ChatType::Group)
}

pub(super) fn parse_role(value: &str) -> MemberRole {
    value.parse().unwrap_or(MemberRole::Member)
}

/// Stores a new chat and its members. `None` when it is a direct chat that already exists
/// (the `chats_direct_key` index), which the caller then reads with [`find_direct`].
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewChat,
) -> sqlx::Result<Option<Uuid>> {
    let (id, created_at) = ids::new_id();
    let inserted = sqlx::query!(
        "INSERT INTO chats (tenant_id, id, type, name, metadata, direct_key, created_by, \
         created_at, updated_at, last_activity_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8) \
         ON CONFLICT (tenant_id, direct_key) WHERE direct_key IS NOT NULL DO NOTHING",
        tenant_id,
        id,
        new.chat_type.as_str(),
        new.name.as_deref(),
        Json(&new.metadata) as _,
        new.direct_key.as_deref(),
        new.creator.as_ref().map(|c| c.as_str()),
        created_at,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    let roles: Vec<&str> = new
        .members
        .iter()
        .map(|member| {
            let is_creator = new.creator.as_ref().is_some_and(|c| c.as_str() == member);
            if is_creator && new.chat_type == ChatType::Group {
                MemberRole::Owner.as_str()
            } else {
                MemberRole::Member.as_str()
            }
        })
        .collect();
    sqlx::query!(
        "INSERT INTO chat_members (tenant_id, chat_id, user_id, role, joined_at) \
         SELECT $1, $2, user_id, role, $5 FROM unnest($3::text[], $4::text[]) AS m(user_id, role)",
        tenant_id,
        id,
        &new.members[..],
        &roles as &[&str],
        created_at,
    )
    .execute(conn)
    .await?;
    Ok(Some(id))
}

/// The direct chat with this key, if it exists.
pub async fn find_direct(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    direct_key: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM chats WHERE tenant_id = $1 AND direct_key = $2",
        tenant_id,
        direct_key,
    )
    .fetch_optional(conn)
    .await
}

/// A chat as `viewer` sees it; `None` when it does not exist or `viewer` is not a member. With
/// no viewer (the tenant's backend), any chat of the tenant.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn view(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    viewer: Option<&str>,
) -> sqlx::Result<Option<ChatView>> {
    let row = view_query!(
        FROM "chats c LEFT JOIN chat_members m ON m.tenant_id = c.tenant_id AND m.chat_id = c.id \
              AND m.user_id = $3"
        WHERE "c.tenant_id = $1 AND c.id = $2 AND ($3::text IS NULL OR m.user_id IS NOT NULL)",
        tenant_id,
        chat_id,
        viewer,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// A page of `user_id`'s chats, most recent activity first, and how many chats they have.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn list_for_user(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<ChatView>, i64)> {
    let rows = view_query!(
        FROM "chat_members m JOIN chats c ON c.tenant_id = m.tenant_id AND c.id = m.chat_id"
        WHERE "m.tenant_id = $1 AND m.user_id = $2 \
               ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $3 OFFSET $4",
        tenant_id,
        user_id,
        limit,
        offset,
    )
    .fetch_all(&mut *conn)
    .await?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM chat_members WHERE tenant_id = $1 AND user_id = $2"#,
        tenant_id,
        user_id,
    )
    .fetch_one(conn)
    .await?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// The chat's type and `user`'s role in it; `None` when the chat does not exist or `user` is
/// not a member. With no user (the tenant), any chat of the tenant. Takes a key-share lock on
/// the chat so a concurrent delete waits for the caller's transaction.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn access(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    user: Option<&str>,
) -> sqlx::Result<Option<Access>> {
    let row = sqlx::query!(
        r#"SELECT c.type AS chat_type, m.role AS "role?" FROM chats c
           LEFT JOIN chat_members m ON m.tenant_id = c.tenant_id AND m.chat_id = c.id
             AND m.user_id = $3
           WHERE c.tenant_id = $1 AND c.id = $2 AND ($3::text IS NULL OR m.user_id IS NOT NULL)
           FOR KEY SHARE OF c"#,
        tenant_id,
        chat_id,
        user,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| Access {
        chat_type: parse_type(&row.chat_type),
        role: row.role.as_deref().map(parse_role),
    }))
}

/// Renames a chat or replaces its metadata (fields left `None` stay as they are).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    name: Option<&str>,
    metadata: Option<&BTreeMap<String, String>>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE chats SET name = coalesce($3, name), metadata = coalesce($4, metadata), \
         updated_at = now() WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        chat_id,
        name,
        metadata.map(Json) as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the chat row for deletion. Taken before [`access`]'s key-share lock, so two
/// concurrent deletes queue up instead of deadlocking on upgrading their shared locks.
pub async fn lock_for_delete(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT FROM chats WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant_id,
        chat_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a chat with its members, messages and receipts; returns who its members were.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn delete(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
) -> sqlx::Result<Vec<String>> {
    let members = member_ids(conn, tenant_id, chat_id).await?;
    sqlx::query!(
        "DELETE FROM chats WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        chat_id,
    )
    .execute(conn)
    .await?;
    Ok(members)
}

/// Every member's user id, in order.
pub async fn member_ids(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT user_id FROM chat_members WHERE tenant_id = $1 AND chat_id = $2 ORDER BY user_id",
        tenant_id,
        chat_id,
    )
    .fetch_all(conn)
    .await
}

/// The members of several chats at once, as (chat, user) pairs: who gets a message's event.
pub async fn members_of(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_ids: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        "SELECT chat_id, user_id FROM chat_members WHERE tenant_id = $1 AND chat_id = ANY($2)",
        tenant_id,
        chat_ids,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.chat_id, row.user_id))
        .collect())
}

/// Adds members in one statement; returns the users who were not members before.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id, users = user_ids.len()))]
pub async fn add_members(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    user_ids: &[String],
    role: MemberRole,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "INSERT INTO chat_members (tenant_id, chat_id, user_id, role) \
         SELECT $1, $2, user_id, $4 FROM unnest($3::text[]) AS user_id \
         ON CONFLICT (tenant_id, chat_id, user_id) DO NOTHING RETURNING user_id",
        tenant_id,
        chat_id,
        user_ids,
        role.as_str(),
    )
    .fetch_all(conn)
    .await
}

/// How many members the chat has and how many of `user_ids` are not among them yet, with the
/// chat row locked until the transaction ends, so concurrent additions cannot both fit under the
/// member limit. Two statements: the count must be read after the lock is held.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn lock_membership(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    user_ids: &[String],
) -> sqlx::Result<(i64, i64)> {
    sqlx::query!(
        "SELECT FROM chats WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant_id,
        chat_id,
    )
    .execute(&mut *conn)
    .await?;
    let counts = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM chat_members WHERE tenant_id = $1 AND chat_id = $2) AS "members!",
                  (SELECT count(DISTINCT u) FROM unnest($3::text[]) AS u WHERE NOT EXISTS
                     (SELECT 1 FROM chat_members m
                      WHERE m.tenant_id = $1 AND m.chat_id = $2 AND m.user_id = u)) AS "joining!""#,
        tenant_id,
        chat_id,
        user_ids,
    )
    .fetch_one(conn)
    .await?;
    Ok((counts.members, counts.joining))
}

/// Removes a member (with their receipts); `false` when they were not one.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn remove_member(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    user_id: &str,
) -> sqlx::Result<bool> {
    let removed = sqlx::query!(
        "DELETE FROM chat_members WHERE tenant_id = $1 AND chat_id = $2 AND user_id = $3",
        tenant_id,
        chat_id,
        user_id,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(removed > 0)
}

struct MemberRow {
    user_id: String,
    role: String,
    joined_at: DateTime<Utc>,
    last_read_message_id: Option<Uuid>,
    last_read_at: Option<DateTime<Utc>>,
    last_delivered_message_id: Option<Uuid>,
    last_delivered_at: Option<DateTime<Utc>>,
}

/// Up to `limit` members in user id order after `after` (keyset paging on the primary key).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, chat_id = %chat_id))]
pub async fn members(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<ChatMember>> {
    let rows = sqlx::query_as!(
        MemberRow,
        "SELECT user_id, role, joined_at, last_read_message_id, last_read_at, \
         last_delivered_message_id, last_delivered_at FROM chat_members \
         WHERE tenant_id = $1 AND chat_id = $2 AND user_id > $3 ORDER BY user_id LIMIT $4",
        tenant_id,
        chat_id,
        after.unwrap_or_default(),
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ChatMember {
            user_id: row.user_id,
            role: parse_role(&row.role),
            joined_at: row.joined_at,
            last_read_message_id: row.last_read_message_id,
            last_read_at: row.last_read_at,
            last_delivered_message_id: row.last_delivered_message_id,
            last_delivered_at: row.last_delivered_at,
        })
        .collect())
}
