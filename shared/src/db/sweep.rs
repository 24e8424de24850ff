//! What the scheduler claims and sweeps each tick.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::deliveries::DeliveryKey;
use crate::db::schedules::ScheduleKind;

/// Only one scheduler sweeps at a time; claims are safe concurrently anyway (SKIP LOCKED).
const SWEEP_LOCK: i64 = 0x0053_5745_4550; // "SWEEP"

/// Takes the sweep's lock for the rest of the transaction; false when another scheduler holds it.
pub async fn try_lock(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#,
        SWEEP_LOCK
    )
    .fetch_one(conn)
    .await
}

/// A schedule record whose time is near.
#[derive(Debug, Clone)]
pub struct DueSchedule {
    pub tenant_id: Uuid,
    pub kind: ScheduleKind,
    pub target_id: Uuid,
    pub due_at: DateTime<Utc>,
}

/// Claims schedule records due within `horizon_secs` (`FOR UPDATE SKIP LOCKED`: concurrent
/// schedulers each claim different rows, never the same one twice).
#[tracing::instrument(skip_all)]
pub async fn claim_due(
    conn: &mut PgConnection,
    horizon_secs: i64,
    limit: i64,
) -> sqlx::Result<Vec<DueSchedule>> {
    let rows = sqlx::query!(
        "UPDATE schedules SET state = 'Queued', updated_at = now() WHERE id IN ( \
             SELECT id FROM schedules WHERE state = 'Pending' AND due_at < now() + make_interval(secs => $1) \
             ORDER BY due_at FOR UPDATE SKIP LOCKED LIMIT $2) \
         RETURNING tenant_id, kind, target_id, due_at",
        horizon_secs as f64,
        limit,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DueSchedule {
                tenant_id: row.tenant_id,
                kind: ScheduleKind::try_from(row.kind)
                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                target_id: row.target_id,
                due_at: row.due_at,
            })
        })
        .collect()
}

/// Notifications accepted but not delivered `older_than_secs` after they were due. Their clock
/// does not restart: re-queueing one whose job still waits adds nothing (`herald_shared::jobs`).
pub async fn undelivered_notifications(
    conn: &mut PgConnection,
    older_than_secs: i64,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!(
        r#"(SELECT tenant_id AS "tenant_id!", id AS "id!" FROM notifications WHERE status = 'Pending'
             AND created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2)
           UNION ALL
           (SELECT n.tenant_id, n.id FROM schedules s JOIN notifications n ON n.tenant_id = s.tenant_id AND n.id = s.target_id
             WHERE s.kind = 'Notification' AND s.state = 'Queued' AND n.status = 'Scheduled'
             AND s.due_at < now() - make_interval(secs => $1) LIMIT $2)"#,
        older_than_secs as f64,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.tenant_id, row.id))
        .collect())
}

/// Deliveries waiting without progress; their clock restarts so the next tick does not queue
/// them again unless they stall once more.
pub async fn stalled_deliveries(
    conn: &mut PgConnection,
    older_than_secs: i64,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryKey>> {
    let rows = sqlx::query!(
        "UPDATE deliveries SET updated_at = now() \
         WHERE (tenant_id, notification_id, channel, target_id) IN ( \
             SELECT tenant_id, notification_id, channel, target_id FROM deliveries \
             WHERE state IN ('Pending', 'Retrying') AND updated_at < now() - make_interval(secs => $1) \
             ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING tenant_id, notification_id, channel, target_id",
        older_than_secs as f64,
        limit,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            key(
                row.tenant_id,
                row.notification_id,
                &row.channel,
                row.target_id,
            )
        })
        .collect()
}

fn key(
    tenant_id: Uuid,
    notification_id: Uuid,
    channel: &str,
    target_id: Uuid,
) -> sqlx::Result<DeliveryKey> {
    Ok(DeliveryKey {
        tenant_id,
        notification_id,
        channel: channel
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        target_id,
    })
}

/// Claims whose exchange never reached the point of no return within `lease_secs` of the
/// claim: the worker died (or its job was dropped) before handing anything over, so sending
/// again cannot send twice. They go back to `Retrying` and are returned to be queued again. A
/// worker still inside such an exchange finds its claim gone when it tries to mark it and
/// stops before sending (`deliveries::mark_data_started`).
pub async fn retake_unstarted_sends(
    conn: &mut PgConnection,
    lease_secs: i64,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryKey>> {
    let message = "The worker stopped before sending; it is sent again.";
    let rows = sqlx::query!(
        "UPDATE deliveries SET state = 'Retrying', last_error = $3, updated_at = now() \
         WHERE (tenant_id, notification_id, channel, target_id) IN ( \
             SELECT tenant_id, notification_id, channel, target_id FROM deliveries WHERE state = 'Sending' \
             AND data_started_at IS NULL AND updated_at < now() - make_interval(secs => $1) \
             ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING tenant_id, notification_id, channel, target_id",
        lease_secs as f64,
        limit,
        message,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            key(
                row.tenant_id,
                row.notification_id,
                &row.channel,
                row.target_id,
            )
        })
        .collect()
}

/// Sends whose worker stopped after handing the message over (the SMTP server had answered
/// `DATA`, or the HTTP request had gone) and never recorded the answer: whether it arrived is
/// unknown, and sending again could send it twice, so they fail with that explanation (at most
/// once). A notification's own email failing this way fails the notification, as any failure
/// of that email does.
pub async fn abandon_interrupted_sends(
    conn: &mut PgConnection,
    older_than_secs: i64,
) -> sqlx::Result<u64> {
    let message = "The worker stopped after handing the message to the provider and before \
                   recording its answer; it may have been delivered, so it was not sent again \
                   to avoid sending it twice.";
    let failed = sqlx::query_scalar!(
        r#"WITH stuck AS (UPDATE deliveries SET state = 'Failed', last_error = $2, updated_at = now()
             WHERE state = 'Sending' AND data_started_at < now() - make_interval(secs => $1)
             RETURNING tenant_id, notification_id, channel, target_id),
         n AS (UPDATE notifications n SET status = CASE WHEN n.status = 'Read' THEN n.status ELSE 'Failed' END,
             error_message = $2 FROM stuck WHERE n.tenant_id = stuck.tenant_id AND n.id = stuck.notification_id
             AND stuck.channel = 'email' AND stuck.target_id = $3)
         SELECT count(*) AS "count!" FROM stuck"#,
        older_than_secs as f64,
        message,
        crate::db::deliveries::OWN_ADDRESS,
    )
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(failed).unwrap_or(0))
}

/// Where a stalled broadcast resumes: an unfinished lane at its cursor, or (no lanes yet) its start.
#[derive(Debug)]
pub struct StalledBroadcast {
    pub tenant_id: Uuid,
    pub broadcast_id: Uuid,
    pub lane: Option<i16>,
    pub cursor: Option<String>,
}

/// Broadcasts queued or fanning out with no progress, and scheduled broadcasts whose start job
/// should have run by now (its schedule record is `Queued`, so no scheduler claims it again:
/// the job was lost to Redis, or its pusher died between claim and push). Their clock restarts
/// as for emails. Skips broadcasts whose chunks are being written (they hold the row's
/// key-share lock).
pub async fn stalled_broadcasts(
    conn: &mut PgConnection,
    older_than_secs: i64,
    limit: i64,
) -> sqlx::Result<Vec<StalledBroadcast>> {
    sqlx::query_as!(
        StalledBroadcast,
        r#"WITH stalled AS (
             UPDATE broadcasts SET updated_at = now() WHERE (tenant_id, id) IN (
                 SELECT tenant_id, id FROM broadcasts WHERE status IN ('Queued', 'FanningOut')
                 AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             OR (tenant_id, id) IN (
                 SELECT b.tenant_id, b.id FROM schedules s
                 JOIN broadcasts b ON b.tenant_id = s.tenant_id AND b.id = s.target_id
                 WHERE s.kind = 'Broadcast' AND s.state = 'Queued' AND b.status = 'Scheduled'
                 AND s.due_at < now() - make_interval(secs => $1)
                 AND b.updated_at < now() - make_interval(secs => $1) LIMIT $2
                 FOR UPDATE OF b SKIP LOCKED)
             RETURNING tenant_id, id)
         SELECT s.tenant_id AS "tenant_id!", s.id AS "broadcast_id!", l.lane AS "lane?",
           l.cursor AS "cursor?" FROM stalled s
         LEFT JOIN broadcast_lanes l ON l.tenant_id = s.tenant_id AND l.broadcast_id = s.id AND NOT l.done"#,
        older_than_secs as f64,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Chat broadcasts not completed and without progress; their clock restarts as for emails.
pub async fn stalled_chat_broadcasts(
    conn: &mut PgConnection,
    older_than_secs: i64,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, Uuid, i32)>> {
    let rows = sqlx::query!(
        "UPDATE chat_broadcasts SET updated_at = now() WHERE (tenant_id, id) IN ( \
             SELECT tenant_id, id FROM chat_broadcasts WHERE status <> 'Completed' \
             AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING tenant_id, id, cursor",
        older_than_secs as f64,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.tenant_id, row.id, row.cursor))
        .collect())
}

/// Forgets idempotency keys past their 24 hours and schedule records long finished.
pub async fn purge_expired(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let keys =
        sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
            .execute(&mut *conn)
            .await?
            .rows_affected();
    let schedules = sqlx::query!(
        "DELETE FROM schedules WHERE state IN ('Done', 'Cancelled') AND updated_at < now() - interval '7 days'",
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(keys + schedules)
}
