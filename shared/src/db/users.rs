//! A user's data across every table: erasure (privacy requests) and renaming (a temporary id
//! becoming a permanent one). Each runs in the caller's transaction, so it is all or nothing.
//!
//! Every table holding a user id must be handled here.

use sqlx::PgConnection;
use uuid::Uuid;

/// Rows removed or changed per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UserRows {
    pub notifications: u64,
    pub schedules: u64,
    pub deliveries: u64,
    pub targets: u64,
    pub idempotency_keys: u64,
    pub recipients: u64,
    pub topic_subscriptions: u64,
    pub broadcast_recipients: u64,
    pub chat_memberships: u64,
    pub chat_messages: u64,
}

/// The idempotency-record caller name of a user acting with a token.
pub fn user_caller(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// Deletes everything stored about `user_id` in the tenant.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn erase(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<UserRows> {
    // Each statement takes the tenant as $1 and the user as $2.
    macro_rules! delete {
        ($sql:literal) => {
            sqlx::query!($sql, tenant_id, user_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        };
    }
    let schedules = delete!(
        "DELETE FROM schedules WHERE tenant_id = $1 AND kind = 'Notification' AND target_id IN \
         (SELECT id FROM notifications WHERE tenant_id = $1 AND user_id = $2)"
    );
    let deliveries = delete!(
        "DELETE FROM deliveries WHERE tenant_id = $1 AND notification_id IN \
         (SELECT id FROM notifications WHERE tenant_id = $1 AND user_id = $2)"
    );
    let targets = delete!("DELETE FROM targets WHERE tenant_id = $1 AND user_id = $2");
    let notifications = delete!("DELETE FROM notifications WHERE tenant_id = $1 AND user_id = $2");
    let idempotency_keys = sqlx::query!(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND caller = $2",
        tenant_id,
        user_caller(user_id),
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let recipients = delete!("DELETE FROM recipients WHERE tenant_id = $1 AND user_id = $2");
    let topic_subscriptions =
        delete!("DELETE FROM topic_subscriptions WHERE tenant_id = $1 AND user_id = $2");
    let broadcast_recipients =
        delete!("DELETE FROM broadcast_recipients WHERE tenant_id = $1 AND user_id = $2");
    let (chat_memberships, chat_messages) = erase_chat_data(conn, tenant_id, user_id).await?;
    Ok(UserRows {
        chat_memberships,
        chat_messages,
        notifications,
        schedules,
        deliveries,
        targets,
        idempotency_keys,
        recipients,
        topic_subscriptions,
        broadcast_recipients,
    })
}

/// Removes the user from chat: their direct chats (a conversation with nobody left), the
/// messages they sent, their memberships with receipts, and their chat broadcasts. Chats they
/// created stay, without a creator. Returns (memberships, messages) removed.
async fn erase_chat_data(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<(u64, u64)> {
    // Each statement takes the tenant as $1 and the user as $2.
    macro_rules! run {
        ($sql:literal) => {
            sqlx::query!($sql, tenant_id, user_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        };
    }
    let direct = run!(
        "DELETE FROM chats c USING chat_members m WHERE c.tenant_id = $1 AND c.type = 'Direct' \
         AND m.tenant_id = c.tenant_id AND m.chat_id = c.id AND m.user_id = $2"
    );
    let messages = run!("DELETE FROM chat_messages WHERE tenant_id = $1 AND sender_id = $2");
    let memberships = run!("DELETE FROM chat_members WHERE tenant_id = $1 AND user_id = $2");
    run!("UPDATE chats SET created_by = NULL WHERE tenant_id = $1 AND created_by = $2");
    run!("DELETE FROM chat_broadcasts WHERE tenant_id = $1 AND sender_id = $2");
    run!("DELETE FROM chat_broadcast_targets WHERE tenant_id = $1 AND user_id = $2");
    Ok((memberships + direct, messages))
}

/// Moves the user's chat data to `new_id`: memberships (receipts follow by `ON UPDATE
/// CASCADE`), sent messages, created chats, the keys of their direct chats, and broadcasts.
/// Returns (memberships, messages) moved.
async fn rename_chat_data(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    old_id: &str,
    new_id: &str,
) -> sqlx::Result<(u64, u64)> {
    // Each statement takes the tenant as $1, the old id as $2 and the new one as $3.
    macro_rules! run {
        ($sql:literal) => {
            sqlx::query!($sql, tenant_id, old_id, new_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        };
    }
    let memberships =
        run!("UPDATE chat_members SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2");
    let messages =
        run!("UPDATE chat_messages SET sender_id = $3 WHERE tenant_id = $1 AND sender_id = $2");
    // A direct chat's key is its two members in order, separated by a space.
    sqlx::query!(
        "UPDATE chats c SET direct_key = (SELECT string_agg(m.user_id, ' ' ORDER BY m.user_id) \
           FROM chat_members m WHERE m.tenant_id = c.tenant_id AND m.chat_id = c.id) \
         WHERE c.tenant_id = $1 AND c.type = 'Direct' AND c.id IN (SELECT chat_id FROM chat_members \
           WHERE tenant_id = $1 AND user_id = $2)",
        tenant_id,
        new_id,
    )
    .execute(&mut *conn)
    .await?;
    run!("UPDATE chats SET created_by = $3 WHERE tenant_id = $1 AND created_by = $2");
    run!("UPDATE chat_broadcasts SET sender_id = $3 WHERE tenant_id = $1 AND sender_id = $2");
    run!("UPDATE chat_broadcast_targets SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2");
    Ok((memberships, messages))
}

/// Whether anything is stored for `user_id` in the tenant: every table [`rename`] writes to, so a
/// rename onto an id with data is refused before it can meet a unique constraint (recipients,
/// topic subscriptions, broadcast audiences, a broadcast's one notification per user, idempotency
/// keys, targets, chat memberships and receipts, direct chat keys).
pub async fn has_data(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM notifications WHERE tenant_id = $1 AND user_id = $2)
             OR EXISTS (SELECT 1 FROM idempotency_keys WHERE tenant_id = $1 AND caller = $3)
             OR EXISTS (SELECT 1 FROM recipients WHERE tenant_id = $1 AND user_id = $2)
             OR EXISTS (SELECT 1 FROM targets WHERE tenant_id = $1 AND user_id = $2)
             OR EXISTS (SELECT 1 FROM topic_subscriptions WHERE tenant_id = $1 AND user_id = $2)
             OR EXISTS (SELECT 1 FROM chat_members WHERE tenant_id = $1 AND user_id = $2)
             OR EXISTS (SELECT 1 FROM chat_messages WHERE tenant_id = $1 AND sender_id = $2)
             OR EXISTS (SELECT 1 FROM broadcast_recipients WHERE tenant_id = $1 AND user_id = $2)
             OR EXISTS (SELECT 1 FROM chat_broadcasts WHERE tenant_id = $1 AND sender_id = $2)
             OR EXISTS (SELECT 1 FROM chat_broadcast_targets WHERE tenant_id = $1 AND user_id = $2)
             OR EXISTS (SELECT 1 FROM chats WHERE tenant_id = $1 AND created_by = $2) AS "found!""#,
        tenant_id,
        user_id,
        user_caller(user_id),
    )
    .fetch_one(conn)
    .await
}

/// Moves everything of `old_id` to `new_id` (the caller checks `new_id` has no data first).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn rename(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    old_id: &str,
    new_id: &str,
) -> sqlx::Result<UserRows> {
    // Each statement takes the tenant as $1, the old id as $2 and the new one as $3.
    macro_rules! rename {
        ($sql:literal) => {
            sqlx::query!($sql, tenant_id, old_id, new_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        };
    }
    let notifications =
        rename!("UPDATE notifications SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2");
    let idempotency_keys = sqlx::query!(
        "UPDATE idempotency_keys SET caller = $3 WHERE tenant_id = $1 AND caller = $2",
        tenant_id,
        user_caller(old_id),
        user_caller(new_id),
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let recipients =
        rename!("UPDATE recipients SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2");
    let targets = rename!("UPDATE targets SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2");
    let topic_subscriptions = rename!(
        "UPDATE topic_subscriptions SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2"
    );
    let broadcast_recipients = rename!(
        "UPDATE broadcast_recipients SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2"
    );
    let (chat_memberships, chat_messages) =
        rename_chat_data(conn, tenant_id, old_id, new_id).await?;
    Ok(UserRows {
        chat_memberships,
        chat_messages,
        notifications,
        idempotency_keys,
        recipients,
        targets,
        topic_subscriptions,
        broadcast_recipients,
        ..UserRows::default()
    })
}

/// Serialises concurrent renames onto the same new id within the tenant, until the
/// transaction ends.
pub async fn lock_rename_target(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new_user_id: &str,
) -> sqlx::Result<()> {
    sqlx::query_scalar!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)) AS locked",
        format!("{tenant_id}:{new_user_id}"),
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}
