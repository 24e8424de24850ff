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
    pub idempotency_keys: u64,
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
    let schedules = sqlx::query(
        "DELETE FROM schedules WHERE tenant_id = $1 AND kind = 'Notification' AND target_id IN \
         (SELECT id FROM notifications WHERE tenant_id = $1 AND user_id = $2)",
    )
    .bind(tenant_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let notifications =
        sqlx::query("DELETE FROM notifications WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    let idempotency_keys =
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND caller = $2")
            .bind(tenant_id)
            .bind(user_caller(user_id))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    Ok(UserRows {
        notifications,
        schedules,
        idempotency_keys,
    })
}

/// Whether anything is stored for `user_id` in the tenant.
pub async fn has_data(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notifications WHERE tenant_id = $1 AND user_id = $2) \
             OR EXISTS (SELECT 1 FROM idempotency_keys WHERE tenant_id = $1 AND caller = $3)",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(user_caller(user_id))
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
    let notifications =
        sqlx::query("UPDATE notifications SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(old_id)
            .bind(new_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    let idempotency_keys =
        sqlx::query("UPDATE idempotency_keys SET caller = $3 WHERE tenant_id = $1 AND caller = $2")
            .bind(tenant_id)
            .bind(user_caller(old_id))
            .bind(user_caller(new_id))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    Ok(UserRows {
        notifications,
        schedules: 0,
        idempotency_keys,
    })
}
