//! Email deliveries: at most one successful send per notification.
//!
//! A worker claims a delivery (`Sending`, one more attempt) in its own committed statement
//! before talking to SMTP. A second run of the job finds it claimed or finished and does
//! nothing. Once the server has answered `DATA` with 354 the worker records that the body is
//! about to go (`data_started_at`), and only if the row is still this attempt's claim. A worker
//! that dies before that mark leaves a claim the sweep may take back and send again (the server
//! was never given a message); one that dies after it leaves a row the sweep fails rather than
//! risk a second email.
//!
//! Every outcome applies only to the attempt that claimed the row (`attempts` and `Sending`
//! unchanged): once the sweep took a claim back, the slow worker that held it records nothing.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::notifications::notification_query;
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
    let claimed = sqlx::query!(
        "UPDATE email_deliveries SET state = 'Sending', attempts = attempts + 1, data_started_at = NULL, \
             updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND state IN ('Pending', 'Retrying') \
         RETURNING attempts, email",
        tenant_id,
        notification_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(claimed) = claimed else {
        return Ok(None);
    };
    let row = notification_query!(
        SELECT "FROM notifications WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        notification_id,
    )
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => Ok(Some(Attempt {
            attempt: claimed.attempts,
            email: claimed.email,
            notification: row.try_into()?,
        })),
        // The notification was deleted meanwhile: nothing to send.
        None => Ok(None),
    }
}

/// This attempt is about to send the body: from here on a dead worker's send is never retried.
/// False when the row is no longer this attempt's claim (the sweep took it back after its
/// lease): the caller must not send the body.
pub async fn mark_data_started(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
    attempt: i32,
) -> sqlx::Result<bool> {
    let marked = sqlx::query!(
        "UPDATE email_deliveries SET data_started_at = now(), updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND state = 'Sending' AND attempts = $3 \
             AND data_started_at IS NULL",
        tenant_id,
        notification_id,
        attempt,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked == 1)
}

/// The email was accepted by the SMTP server. False when the row was no longer this
/// attempt's claim.
pub async fn mark_sent(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
    attempt: i32,
) -> sqlx::Result<bool> {
    let marked = sqlx::query!(
        "UPDATE email_deliveries SET state = 'Sent', sent_at = now(), updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND state = 'Sending' AND attempts = $3",
        tenant_id,
        notification_id,
        attempt,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked == 1)
}

/// A transient failure: another attempt will follow. The attempt's `DATA` mark is cleared, as
/// the worker knows how its exchange ended. False when the row was no longer this attempt's
/// claim.
pub async fn mark_retrying(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
    attempt: i32,
    error: &str,
) -> sqlx::Result<bool> {
    let marked = sqlx::query_scalar!(
        r#"WITH d AS (UPDATE email_deliveries SET state = 'Retrying', last_error = $4,
                 data_started_at = NULL, updated_at = now()
             WHERE tenant_id = $1 AND notification_id = $2 AND state = 'Sending' AND attempts = $3
             RETURNING 1),
         n AS (UPDATE notifications SET retry_count = $3, error_message = $4
             WHERE tenant_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM d))
         SELECT count(*) AS "count!" FROM d"#,
        tenant_id,
        notification_id,
        attempt,
        error,
    )
    .fetch_one(conn)
    .await?;
    Ok(marked == 1)
}

/// The email failed for good: the notification becomes `Failed` (unless the user already read
/// it in the inbox, which the email failure does not undo). `attempt` is the claim's attempt
/// number; the notification's `retryCount` is one less. False when the row was no longer this
/// attempt's claim.
pub async fn mark_failed(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
    attempt: i32,
    error: &str,
) -> sqlx::Result<bool> {
    let marked = sqlx::query_scalar!(
        r#"WITH d AS (UPDATE email_deliveries SET state = 'Failed', last_error = $4, updated_at = now()
             WHERE tenant_id = $1 AND notification_id = $2 AND state = 'Sending' AND attempts = $3
             RETURNING 1),
         n AS (UPDATE notifications SET retry_count = $3 - 1, error_message = $4,
                 status = CASE WHEN status = 'Read' THEN status ELSE 'Failed' END
             WHERE tenant_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM d))
         SELECT count(*) AS "count!" FROM d"#,
        tenant_id,
        notification_id,
        attempt,
        error,
    )
    .fetch_one(conn)
    .await?;
    Ok(marked == 1)
}
