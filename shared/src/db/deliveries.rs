//! Deliveries: at most one successful send per notification, channel and target.
//!
//! A worker claims a delivery (`Sending`, one more attempt) in its own committed statement
//! before talking to the provider. A second run of the job finds it claimed or finished and
//! does nothing. Right before the point of no return (an SMTP server answered `DATA` with 354;
//! an HTTP request is about to be written) the worker records it (`data_started_at`), and only
//! if the row is still this attempt's claim. A worker that dies before that mark leaves a claim
//! the sweep may take back and send again (nothing was handed over); one that dies after it
//! leaves a row the sweep fails rather than risk a second send.
//!
//! Every outcome applies only to the attempt that claimed the row (`attempts` and `Sending`
//! unchanged): once the sweep took a claim back, the slow worker that held it records nothing.
//!
//! Only the email to the notification's own address ([`OWN_ADDRESS`]) decides the
//! notification's `Failed` status, as it always has; the other deliveries are in the log.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::notifications::notification_query;
use crate::domain::Notification;
use crate::domain::target::TargetKind;

/// The `target_id` of a send to the notification's own address (its `email`, or the
/// recipient profile's), which is no registered target.
pub const OWN_ADDRESS: Uuid = Uuid::nil();

/// Which delivery: a notification's send on one channel to one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub tenant_id: Uuid,
    pub notification_id: Uuid,
    pub channel: TargetKind,
    pub target_id: Uuid,
}

impl DeliveryKey {
    /// The email to the notification's own address.
    pub fn own_email(tenant_id: Uuid, notification_id: Uuid) -> Self {
        Self {
            tenant_id,
            notification_id,
            channel: TargetKind::Email,
            target_id: OWN_ADDRESS,
        }
    }
}

/// A claimed attempt.
pub struct Attempt {
    pub attempt: i32,
    /// The email address, phone number, webhook URL or push endpoint.
    pub address: String,
    pub notification: Notification,
}

/// Claims the next attempt of the delivery, or `None` when it is finished or being sent.
#[tracing::instrument(skip_all, fields(tenant_id = %key.tenant_id, notification_id = %key.notification_id, channel = key.channel.as_str()))]
pub async fn claim(conn: &mut PgConnection, key: &DeliveryKey) -> sqlx::Result<Option<Attempt>> {
    let claimed = sqlx::query!(
        "UPDATE deliveries SET state = 'Sending', attempts = attempts + 1, data_started_at = NULL, \
             updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND channel = $3 AND target_id = $4 \
           AND state IN ('Pending', 'Retrying') \
         RETURNING attempts, address",
        key.tenant_id,
        key.notification_id,
        key.channel.as_str(),
        key.target_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(claimed) = claimed else {
        return Ok(None);
    };
    let row = notification_query!(
        SELECT "FROM notifications WHERE tenant_id = $1 AND id = $2",
        key.tenant_id,
        key.notification_id,
    )
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => Ok(Some(Attempt {
            attempt: claimed.attempts,
            address: claimed.address,
            notification: row.try_into()?,
        })),
        // The notification was deleted meanwhile: nothing to send.
        None => Ok(None),
    }
}

/// This attempt is about to hand the message over: from here on a dead worker's send is never
/// retried. False when the row is no longer this attempt's claim (the sweep took it back
/// after its lease): the caller must not send.
pub async fn mark_data_started(
    conn: &mut PgConnection,
    key: &DeliveryKey,
    attempt: i32,
    provider: &str,
) -> sqlx::Result<bool> {
    let marked = sqlx::query!(
        "UPDATE deliveries SET data_started_at = now(), provider = $6, updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND channel = $3 AND target_id = $4 \
           AND state = 'Sending' AND attempts = $5 AND data_started_at IS NULL",
        key.tenant_id,
        key.notification_id,
        key.channel.as_str(),
        key.target_id,
        attempt,
        provider,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked == 1)
}

/// The provider accepted the message. False when the row was no longer this attempt's claim.
pub async fn mark_sent(
    conn: &mut PgConnection,
    key: &DeliveryKey,
    attempt: i32,
    provider: &str,
) -> sqlx::Result<bool> {
    let marked = sqlx::query!(
        "UPDATE deliveries SET state = 'Sent', sent_at = now(), provider = $6, updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND channel = $3 AND target_id = $4 \
           AND state = 'Sending' AND attempts = $5",
        key.tenant_id,
        key.notification_id,
        key.channel.as_str(),
        key.target_id,
        attempt,
        provider,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked == 1)
}

/// A transient failure: another attempt will follow. The attempt's `DATA` mark is cleared, as
/// the worker knows how its exchange ended. The notification's `retryCount` and `errorMessage`
/// follow its own email. False when the row was no longer this attempt's claim.
pub async fn mark_retrying(
    conn: &mut PgConnection,
    key: &DeliveryKey,
    attempt: i32,
    provider: Option<&str>,
    error: &str,
) -> sqlx::Result<bool> {
    let marked = sqlx::query_scalar!(
        r#"WITH d AS (UPDATE deliveries SET state = 'Retrying', last_error = $6,
                 provider = coalesce($7, provider), data_started_at = NULL, updated_at = now()
             WHERE tenant_id = $1 AND notification_id = $2 AND channel = $3 AND target_id = $4
               AND state = 'Sending' AND attempts = $5
             RETURNING 1),
         n AS (UPDATE notifications SET retry_count = $5, error_message = $6
             WHERE tenant_id = $1 AND id = $2 AND $3 = 'email' AND $4 = $8
               AND EXISTS (SELECT 1 FROM d))
         SELECT count(*) AS "count!" FROM d"#,
        key.tenant_id,
        key.notification_id,
        key.channel.as_str(),
        key.target_id,
        attempt,
        error,
        provider,
        OWN_ADDRESS,
    )
    .fetch_one(conn)
    .await?;
    Ok(marked == 1)
}

/// The delivery failed for good. Its notification's own email failing makes the notification
/// `Failed` (unless the user already read it in the inbox, which the email failure does not
/// undo); `attempt` is the claim's attempt number and the notification's `retryCount` one
/// less. False when the row was no longer this attempt's claim.
pub async fn mark_failed(
    conn: &mut PgConnection,
    key: &DeliveryKey,
    attempt: i32,
    provider: Option<&str>,
    error: &str,
) -> sqlx::Result<bool> {
    let marked = sqlx::query_scalar!(
        r#"WITH d AS (UPDATE deliveries SET state = 'Failed', last_error = $6,
                 provider = coalesce($7, provider), updated_at = now()
             WHERE tenant_id = $1 AND notification_id = $2 AND channel = $3 AND target_id = $4
               AND state = 'Sending' AND attempts = $5
             RETURNING 1),
         n AS (UPDATE notifications SET retry_count = $5 - 1, error_message = $6,
                 status = CASE WHEN status = 'Read' THEN status ELSE 'Failed' END
             WHERE tenant_id = $1 AND id = $2 AND $3 = 'email' AND $4 = $8
               AND EXISTS (SELECT 1 FROM d))
         SELECT count(*) AS "count!" FROM d"#,
        key.tenant_id,
        key.notification_id,
        key.channel.as_str(),
        key.target_id,
        attempt,
        error,
        provider,
        OWN_ADDRESS,
    )
    .fetch_one(conn)
    .await?;
    Ok(marked == 1)
}

/// Nothing to send through: the claim ends `Skipped` with the reason (the target was removed,
/// or the tenant has no provider for the channel). False when no longer this attempt's claim.
pub async fn mark_skipped(
    conn: &mut PgConnection,
    key: &DeliveryKey,
    attempt: i32,
    reason: &str,
) -> sqlx::Result<bool> {
    let marked = sqlx::query!(
        "UPDATE deliveries SET state = 'Skipped', last_error = $6, updated_at = now() \
         WHERE tenant_id = $1 AND notification_id = $2 AND channel = $3 AND target_id = $4 \
           AND state = 'Sending' AND attempts = $5",
        key.tenant_id,
        key.notification_id,
        key.channel.as_str(),
        key.target_id,
        attempt,
        reason,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked == 1)
}

/// One delivery as the log shows it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub channel: TargetKind,
    pub target_id: Uuid,
    pub provider: Option<String>,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A notification's deliveries, in the order they were recorded.
pub async fn for_notification(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
) -> sqlx::Result<Vec<LogEntry>> {
    let rows = sqlx::query!(
        "SELECT channel, target_id, provider, state, attempts, last_error, sent_at FROM deliveries \
         WHERE tenant_id = $1 AND notification_id = $2 ORDER BY created_at, channel, target_id",
        tenant_id,
        notification_id,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(LogEntry {
                channel: row
                    .channel
                    .parse()
                    .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
                target_id: row.target_id,
                provider: row.provider,
                state: row.state,
                attempts: row.attempts,
                last_error: row.last_error,
                sent_at: row.sent_at,
            })
        })
        .collect()
}
