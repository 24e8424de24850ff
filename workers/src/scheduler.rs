//! The scheduler's tick: queue what comes due in the next minute at its exact time, and sweep
//! accepted work that stopped making progress (lost enqueue, Redis flushed, dead worker).

use apalis::prelude::{BoxDynError, Data};
use apalis_core::backend::Vacuum;
use apalis_cron::Tick;
use chrono::Utc;
use herald_shared::db::schedules::ScheduleKind;
use herald_shared::db::sweep;
use herald_shared::domain::QueueAt;
use herald_shared::jobs::{ChatFanOut, Deliver, Dispatch, FanOut, Queue};

use crate::runtime::Deps;

/// Schedule records due within this many seconds are queued each tick (ticks are a minute
/// apart, so nothing waits past its time).
pub const HORIZON_SECS: i64 = 60;
/// Most rows one tick claims or sweeps of each kind; the next tick takes the rest.
const BATCH: i64 = 10_000;
/// A send whose worker stopped after its body started to go is given up after this long (see
/// `abandon_interrupted_sends`): far past what a live worker needs to read the server's answer
/// and record it (`herald_workers::email`: 2 minutes for the answer, up to 3 for recording),
/// so it never fails a send that is still being recorded.
const INTERRUPTED_SEND_SECS: i64 = 600;

pub async fn tick(_tick: Tick, deps: Data<Deps>) -> Result<(), BoxDynError> {
    run(&deps).await
}

/// One tick's work (also run once at startup, to catch up after downtime).
pub async fn run(deps: &Deps) -> Result<(), BoxDynError> {
    queue_due(deps).await?;
    sweep_stalled(deps).await?;
    Ok(())
}

async fn queue_due(deps: &Deps) -> Result<(), BoxDynError> {
    let mut conn = deps.db.acquire().await?;
    let due = sweep::claim_due(&mut conn, HORIZON_SECS, BATCH).await?;
    drop(conn);
    let now = Utc::now();
    for schedule in due {
        let (tenant_id, target) = (schedule.tenant_id, schedule.target_id);
        // An enqueue that fails leaves the record `Queued` with its target unfinished: the
        // sweep below finds and queues it again once it is overdue.
        let queue = QueueAt::on_claim(schedule.due_at, now);
        let queued = match schedule.kind {
            ScheduleKind::Notification => {
                let job = Deliver {
                    tenant_id,
                    notification_id: target,
                };
                deps.queues.deliver_when(job, queue).await
            }
            ScheduleKind::Broadcast => {
                let job = FanOut::start(tenant_id, target);
                deps.queues.fan_out_when(job, queue).await
            }
        };
        if let Err(error) = queued {
            tracing::warn!(%error, %target, "could not queue scheduled work; the sweep will retry");
        }
    }
    Ok(())
}

async fn sweep_stalled(deps: &Deps) -> Result<(), BoxDynError> {
    let mut tx = deps.db.begin().await?;
    if !sweep::try_lock(&mut tx).await? {
        return Ok(());
    }
    let after = i64::try_from(deps.config.sweep_after_secs).unwrap_or(i64::MAX);
    let notifications = sweep::undelivered_notifications(&mut tx, after, BATCH).await?;
    let mut sends = sweep::stalled_deliveries(&mut tx, after, BATCH).await?;
    let lease = i64::try_from(deps.config.email_lease_secs).unwrap_or(i64::MAX);
    let retaken = sweep::retake_unstarted_sends(&mut tx, lease, BATCH).await?;
    let broadcasts = sweep::stalled_broadcasts(&mut tx, after, BATCH).await?;
    let chat_broadcasts = sweep::stalled_chat_broadcasts(&mut tx, after, BATCH).await?;
    let abandoned = sweep::abandon_interrupted_sends(&mut tx, INTERRUPTED_SEND_SECS).await?;
    let purged = sweep::purge_expired(&mut tx).await?;
    tx.commit().await?;
    let retaken_count = retaken.len();
    sends.extend(retaken);

    // Work whose job still waits in Redis is pushed again under the same task id, which adds
    // nothing (`herald_shared::jobs`): only jobs Redis lost come back.
    let deliveries: Vec<Deliver> = notifications
        .iter()
        .map(|(tenant_id, notification_id)| Deliver {
            tenant_id: *tenant_id,
            notification_id: *notification_id,
        })
        .collect();
    deps.queues.delivers(deliveries).await?;
    let send_count = sends.len();
    deps.queues
        .dispatch(sends.into_iter().map(Dispatch::from).collect())
        .await?;
    let fan_outs: Vec<FanOut> = broadcasts
        .into_iter()
        .map(|stalled| match (stalled.lane, stalled.cursor) {
            (Some(lane), Some(cursor)) => {
                FanOut::chunk(stalled.tenant_id, stalled.broadcast_id, lane, cursor)
            }
            _ => FanOut::start(stalled.tenant_id, stalled.broadcast_id),
        })
        .collect();
    // Counted in jobs: a stalled broadcast resumes each of its unfinished lanes.
    let broadcast_jobs = fan_outs.len();
    deps.queues.fan_outs(fan_outs).await?;
    let chat_jobs: Vec<ChatFanOut> = chat_broadcasts
        .iter()
        .map(|(tenant_id, broadcast_id, cursor)| ChatFanOut {
            tenant_id: *tenant_id,
            broadcast_id: *broadcast_id,
            cursor: *cursor,
        })
        .collect();
    deps.queues.chat_fan_outs(chat_jobs).await?;
    let vacuumed = vacuum_finished_jobs(deps).await?;
    let swept = notifications.len() + send_count + broadcast_jobs + chat_broadcasts.len();
    if swept > 0 || abandoned > 0 {
        tracing::info!(
            notifications = notifications.len(),
            deliveries = send_count,
            retaken = retaken_count,
            broadcast_jobs,
            chat_broadcasts = chat_broadcasts.len(),
            abandoned,
            purged,
            vacuumed,
            "swept stalled work"
        );
    }
    Ok(())
}

/// apalis-redis keeps every finished job's data, metadata and id forever (apalis-redis has no expiry of its own):
/// drop those of finished jobs each tick so Redis memory follows the work in flight, not the
/// work ever done. Outcomes that matter are in PostgreSQL.
async fn vacuum_finished_jobs(deps: &Deps) -> Result<usize, BoxDynError> {
    let mut removed = 0;
    for queue in Queue::ALL {
        let mut storage = deps.queues.worker_storage::<serde_json::Value>(queue, 1);
        removed += storage.vacuum().await?;
        let config = queue.config(deps.queues.prefix());
        let mut redis = deps.redis.clone();
        let _: () = redis::cmd("DEL")
            .arg(config.done_jobs_set())
            .arg(config.dead_jobs_set())
            .query_async(&mut redis)
            .await?;
    }
    Ok(removed)
}
