//! The `Deliver` job: a notification reaches the inbox and the user's live connections.

use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use herald_shared::db;
use herald_shared::db::commit_window::CommitClock;
use herald_shared::db::deliveries::DeliveryKey;
use herald_shared::domain::channel;
use herald_shared::domain::target::TargetKind;
use herald_shared::domain::{Notification, NotificationStatus};
use herald_shared::events::{self, EventType, MessagingEvent};
use herald_shared::jobs::{Deliver, Dispatch};

use crate::runtime::Deps;

/// Longest wait for a scheduled notification whose job became due early (job times have
/// one-second resolution; anything longer means the job was queued far too early).
const MAX_EARLY_WAIT: Duration = Duration::from_secs(2);
/// Tries before giving the job back to apalis for a retry.
const DUE_ATTEMPTS: usize = 3;

pub async fn deliver(job: Deliver, deps: Data<Deps>) -> Result<(), BoxDynError> {
    let Some((notification, deliveries)) = mark_sent(&deps, &job).await? else {
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
    // A lost push leaves the deliveries `Pending`: the sweep queues them again.
    deps.queues
        .dispatch(deliveries.into_iter().map(Dispatch::from).collect())
        .await?;
    Ok(())
}

/// Marks the notification `Sent` and records its deliveries in one transaction; `None` when it
/// was already delivered, cancelled or deleted.
async fn mark_sent(
    deps: &Deps,
    job: &Deliver,
) -> Result<Option<(Notification, Vec<DeliveryKey>)>, BoxDynError> {
    for _ in 0..DUE_ATTEMPTS {
        if let Some(sent) = try_mark_sent(deps, job).await? {
            return Ok(Some(sent));
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

async fn try_mark_sent(
    deps: &Deps,
    job: &Deliver,
) -> Result<Option<(Notification, Vec<DeliveryKey>)>, BoxDynError> {
    let clock = CommitClock::start();
    let mut tx = deps.db.begin().await?;
    let Some(notification) =
        db::delivery::mark_sent(&mut tx, job.tenant_id, job.notification_id).await?
    else {
        return Ok(None);
    };
    let mut kinds = channel::target_kinds(&notification.channels());
    let mut own_email = None;
    if kinds.contains(&TargetKind::Email) {
        let preference = db::delivery::email_preference(
            &mut tx,
            job.tenant_id,
            &notification.user_id,
            notification.notification_type,
        )
        .await?;
        if preference.allowed {
            // The address the notification names, or else the profile's.
            own_email = notification.email.clone().or(preference.profile_email);
        } else {
            tracing::info!(notification_id = %notification.id, "recipient opted out of this email");
            kinds.retain(|kind| *kind != TargetKind::Email);
        }
    }
    // An inbox-only notification writes nothing more: its transaction stays as short as it was.
    let deliveries = if own_email.is_none() && kinds.is_empty() {
        Vec::new()
    } else {
        db::delivery::create_deliveries(&mut tx, &notification, own_email.as_deref(), &kinds)
            .await?
    };
    clock.commit(tx).await?;
    Ok(Some((notification, deliveries)))
}
