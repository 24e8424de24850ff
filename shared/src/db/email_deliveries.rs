//! Email deliveries: at most one successful send per notification.
//!
//! A worker claims a delivery (`Sending`, one more attempt) in its own committed statement
//! before talking to SMTP. A second run of the job finds it claimed or finished and does
//! nothing; a worker that dies mid-send leaves it `Sending`, and the sweep eventually marks it
//! failed rather than risk a second email.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::notifications::{COLUMNS, Row};
use crate::domain::Notification;

/// A claimed attempt.
pub struct Attempt {
    pub attempt: i32,
    pub email: String,
    pub notification: Notification,
}

/// Claims the next attempt of the delivery, or `None` when it is finished or being sent.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %notification_id))]
pub async fn claim(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
) -> sqlx::Result<Option<Attempt>> {
    let claimed: Option<(i32, String)> = sqlx::query_as(
        "UPDATE email_deliveries SET state = 'Sending', attempts = attempts + 1, updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND state IN ('Pending', 'Retrying') \
         RETURNING attempts, email",
    )
    .bind(tenant_id)
    .bind(notification_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((attempt, email)) = claimed else {
        return Ok(None);
    };
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant_id)
    .bind(notification_id)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => Ok(Some(Attempt {
            attempt,
            email,
            notification: row.try_into()?,
        })),
        // The notification was deleted meanwhile: nothing to send.
        None => Ok(None),
    }
}

/// The email was accepted by the SMTP server.
pub async fn mark_sent(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE email_deliveries SET state = 'Sent', sent_at = now(), updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2",
    )
    .bind(tenant_id)
    .bind(notification_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A transient failure: another attempt will follow.
pub async fn mark_retrying(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
    attempt: i32,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH d AS (UPDATE email_deliveries SET state = 'Retrying', last_error = $4, updated_at = now() \
             WHERE tenant_id = $1 AND notification_id = $2) \
         UPDATE notifications SET retry_count = $3, error_message = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(notification_id)
    .bind(attempt)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The email failed for good: the notification becomes `Failed` (unless the user already read
/// it in the inbox, which the email failure does not undo).
pub async fn mark_failed(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
    retries: i32,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH d AS (UPDATE email_deliveries SET state = 'Failed', last_error = $4, updated_at = now() \
             WHERE tenant_id = $1 AND notification_id = $2) \
         UPDATE notifications SET retry_count = $3, error_message = $4, \
             status = CASE WHEN status = 'Read' THEN status ELSE 'Failed' END \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(notification_id)
    .bind(retries)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}
