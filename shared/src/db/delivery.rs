//! Delivering one notification to the inbox (the `Deliver` job).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::deliveries::{DeliveryKey, OWN_ADDRESS};
use crate::db::notifications::notification_query;
use crate::domain::target::TargetKind;
use crate::domain::{Notification, NotificationType};

/// Marks a notification delivered. `None` when there is nothing to do (already delivered,
/// cancelled, deleted — which makes the job idempotent — or scheduled for later).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %id))]
pub async fn mark_sent(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Notification>> {
    let row = notification_query!(
        "UPDATE notifications SET status = 'Sent', sent_at = now() \
         WHERE tenant_id = $1 AND id = $2 \
           AND (status = 'Pending' OR (status = 'Scheduled' AND scheduled_for <= now()))" RETURNING,
        tenant_id,
        id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    sqlx::query!(
        "UPDATE schedules SET state = 'Done', updated_at = now() \
         WHERE tenant_id = $1 AND kind = 'Notification' AND target_id = $2 AND state IN ('Pending', 'Queued')",
        tenant_id,
        id,
    )
    .execute(conn)
    .await?;
    row.try_into().map(Some)
}

/// What the recipient's profile says about emailing them a notification of some type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailPreference {
    /// Email is on and this type is not opted out of (no profile: yes).
    pub allowed: bool,
    /// The profile's address, if any.
    pub profile_email: Option<String>,
}

pub async fn email_preference(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    kind: NotificationType,
) -> sqlx::Result<EmailPreference> {
    let row = sqlx::query!(
        r#"SELECT email_enabled AND NOT ($3 = ANY (email_opt_out)) AS "allowed!", email
           FROM recipients WHERE tenant_id = $1 AND user_id = $2"#,
        tenant_id,
        user_id,
        kind.as_str(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(row) => EmailPreference {
            allowed: row.allowed,
            profile_email: row.email,
        },
        None => EmailPreference {
            allowed: true,
            profile_email: None,
        },
    })
}

/// Records a notification's sends beyond the inbox, in one statement: an email to
/// `own_email` when given, and one delivery to each of the user's targets of `kinds`. Returns
/// the deliveries it created (none that were recorded before).
pub async fn create_deliveries(
    conn: &mut PgConnection,
    notification: &Notification,
    own_email: Option<&str>,
    kinds: &[TargetKind],
) -> sqlx::Result<Vec<DeliveryKey>> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let rows = sqlx::query!(
        r#"INSERT INTO deliveries (tenant_id, notification_id, broadcast_id, channel, target_id, address)
           SELECT $1, $2, $3, d.channel, d.target_id, d.address FROM (
               SELECT 'email' AS channel, $6::uuid AS target_id, $5::text AS address WHERE $5 IS NOT NULL
               UNION ALL
               SELECT t.type, t.id, t.address FROM targets t
               WHERE t.tenant_id = $1 AND t.user_id = $4 AND t.type = ANY ($7)
           ) AS d
           ON CONFLICT DO NOTHING
           RETURNING channel, target_id"#,
        notification.tenant_id,
        notification.id,
        notification.broadcast_id,
        notification.user_id,
        own_email,
        OWN_ADDRESS,
        &kinds as &[&str],
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DeliveryKey {
                tenant_id: notification.tenant_id,
                notification_id: notification.id,
                channel: row
                    .channel
                    .parse()
                    .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
                target_id: row.target_id,
            })
        })
        .collect()
}
