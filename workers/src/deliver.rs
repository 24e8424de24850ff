//! The `Deliver` job: a notification reaches the inbox and the user's live connections.

use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use herald_shared::db;
use herald_shared::db::commit_window::CommitClock;
use herald_shared::domain::{Notification, NotificationStatus};
use herald_shared::events::{self, EventType, MessagingEvent};
use herald_shared::jobs::{Deliver, SendEmail};

use crate::runtime::Deps;

/// Longest wait for a scheduled notification whose job became due early (job times have
/// one-second resolution; anything longer means the job was queued far too early).
const MAX_EARLY_WAIT: Duration = Duration::from_secs(2);
/// Tries before giving the job back to apalis for a retry.
const DUE_ATTEMPTS: usize = 3;

pub async fn deliver(job: Deliver, deps: Data<Deps>) -> Result<(), BoxDynError> {
    let Some(notification) = mark_sent(&deps, &job).await? else {
        return Ok(());
    };
    let event =
        MessagingEvent::notification(EventType::Message, notification.id, notification.created_at);
    let mut redis = deps.redis.clone();
    events::publish(
        &mut redis,
        deps.queues.prefix(),
        job.tenant_id,
        &[(notification.user_id.as_str(), event)],
    )
    .await?;
    if notification.email.is_some() {
        deps.queues
            .send_emails(vec![SendEmail {
                tenant_id: job.tenant_id,
                notification_id: job.notification_id,
            }])
            .await?;
    }
    Ok(())
}

/// Marks the notification `Sent` and records its email delivery in one transaction; `None`
/// when it was already delivered, cancelled or deleted.
async fn mark_sent(deps: &Deps, job: &Deliver) -> Result<Option<Notification>, BoxDynError> {
    for _ in 0..DUE_ATTEMPTS {
        if let Some(notification) = try_mark_sent(deps, job).await? {
            return Ok(Some(notification));
        }
        // Job times have one-second resolution: a scheduled notification's job may come due a
        // moment early. Wait out the rest (its time may also pass while we look: then wait
        // nothing) so it arrives at its exact time.
        let mut conn = deps.db.acquire().await?;
        let due = db::notifications::get(&mut conn, job.tenant_id, job.notification_id, false)
            .await?
            .filter(|n| n.status == NotificationStatus::Scheduled)
            .and_then(|n| n.scheduled_for);
        drop(conn);
        let Some(due) = due else {
            return Ok(None);
        };
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        if wait > MAX_EARLY_WAIT {
            // Far too early (a clock jump?): queue it again for its time.
            tracing::warn!(?wait, notification_id = %job.notification_id, "delivery job came due early; re-queued");
            deps.queues.deliver_again_at(job.clone(), due).await?;
            return Ok(None);
        }
        // A millisecond past `due`, so PostgreSQL's clock agrees it is due.
        tokio::time::sleep(wait + Duration::from_millis(1)).await;
    }
    Err(format!(
        "notification {} still not due after {DUE_ATTEMPTS} tries",
        job.notification_id
    )
    .into())
}

async fn try_mark_sent(deps: &Deps, job: &Deliver) -> Result<Option<Notification>, BoxDynError> {
    let clock = CommitClock::start();
    let mut tx = deps.db.begin().await?;
    let Some(mut notification) =
        db::delivery::mark_sent(&mut tx, job.tenant_id, job.notification_id).await?
    else {
        return Ok(None);
    };
    if let Some(email) = notification.email.clone() {
        let allowed = db::delivery::email_allowed(
            &mut tx,
            job.tenant_id,
            &notification.user_id,
            notification.notification_type,
        )
        .await?;
        if allowed {
            db::delivery::create_email_delivery(&mut tx, job.tenant_id, notification.id, &email)
                .await?;
        } else {
            tracing::info!(notification_id = %notification.id, "recipient opted out of this email");
            notification.email = None;
        }
    }
    clock.commit(tx).await?;
    Ok(Some(notification))
}
