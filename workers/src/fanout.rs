//! The `FanOut` job: a broadcast's start (splitting it into lanes), then one chunk of one lane
//! per run (see `herald_shared::db::fanout`).

use apalis::prelude::{BoxDynError, Data};
use herald_shared::db::broadcasts::RowLock;
use herald_shared::db::commit_window::CommitClock;
use herald_shared::db::deliveries::DeliveryKey;
use herald_shared::db::schedules::{self, ScheduleKind};
use herald_shared::db::{self, broadcast_lanes, fanout};
use herald_shared::domain::broadcast::BroadcastStatus;
use herald_shared::events::{self, EventType, MessagingEvent};
use herald_shared::jobs::{Dispatch, FanOut, LanePosition};

use crate::runtime::Deps;

pub async fn fan_out(job: FanOut, deps: Data<Deps>) -> Result<(), BoxDynError> {
    match job.lane {
        None => start(&job, &deps).await,
        Some(ref position) => write_chunk(&job, position, &deps).await,
    }
}

/// How many lanes an audience of `total` gets: as configured, but no lane shorter than a chunk
/// (a small broadcast is one lane, as fast as it can be).
fn lane_count(total: i64, chunk_size: i64, configured: i64) -> i64 {
    (total / chunk_size).clamp(1, configured.max(1))
}

/// Splits the audience into lanes and queues each lane's first chunk.
async fn start(job: &FanOut, deps: &Deps) -> Result<(), BoxDynError> {
    let mut tx = deps.db.begin().await?;
    let Some(broadcast) =
        db::broadcasts::get(&mut tx, job.tenant_id, job.broadcast_id, RowLock::Update).await?
    else {
        return Ok(());
    };
    // Cancelled, finished, or already started by another copy of this job: its lanes carry on
    // with their own jobs (and the scheduler's sweep resumes any that stall).
    if broadcast.status.is_final() || broadcast.status == BroadcastStatus::FanningOut {
        return Ok(());
    }
    let total = fanout::audience_size(&mut tx, &broadcast).await?;
    let lanes = lane_count(
        total,
        deps.config.fanout_chunk_size,
        deps.config.fanout_lanes,
    );
    let bounds = fanout::lane_bounds(&mut tx, &broadcast, total, lanes).await?;
    let lanes = broadcast_lanes::create(&mut tx, &broadcast, &bounds).await?;
    fanout::start(&mut tx, &broadcast, total).await?;
    schedules::mark_done(
        &mut tx,
        job.tenant_id,
        ScheduleKind::Broadcast,
        job.broadcast_id,
    )
    .await?;
    tx.commit().await?;
    tracing::debug!(broadcast_id = %job.broadcast_id, total, lanes = lanes.len(), "fan-out started");
    let jobs = lanes
        .into_iter()
        .map(|lane| FanOut::chunk(job.tenant_id, job.broadcast_id, lane.lane, lane.cursor))
        .collect();
    deps.queues.fan_outs(jobs).await?;
    Ok(())
}

/// Writes the lane's next chunk, queues the one after it, then publishes and emails.
async fn write_chunk(
    job: &FanOut,
    position: &LanePosition,
    deps: &Deps,
) -> Result<(), BoxDynError> {
    let lane = position.lane;
    let chunk_size = deps.config.fanout_chunk_size;
    let clock = CommitClock::start();
    let mut tx = deps.db.begin().await?;
    let Some(broadcast) =
        db::broadcasts::get(&mut tx, job.tenant_id, job.broadcast_id, RowLock::KeyShare).await?
    else {
        return Ok(());
    };
    if broadcast.status.is_final() {
        return Ok(());
    }
    let Some(state) = broadcast_lanes::lock(&mut tx, &broadcast, lane).await? else {
        return Ok(());
    };
    // A stale copy of a job whose chunk was already written: the cursor moves with every chunk,
    // so only the job carrying the lane's current cursor may proceed.
    if state.done || position.cursor != state.cursor {
        return Ok(());
    }
    // One recipient more than the chunk tells whether another chunk follows, so the last chunk
    // finishes the lane instead of an empty job after it.
    let mut recipients = fanout::next_chunk(
        &mut tx,
        &broadcast,
        &state.cursor,
        state.upper_bound.as_deref(),
        chunk_size + 1,
    )
    .await?;
    let finished = recipients.len() as i64 <= chunk_size;
    recipients.truncate(chunk_size as usize);
    let written = fanout::insert_chunk(&mut tx, &broadcast, &state.cursor, &recipients).await?;
    let next_cursor = recipients
        .last()
        .map_or(state.cursor, |r| r.user_id.clone());
    broadcast_lanes::advance(&mut tx, &broadcast, lane, &next_cursor, finished).await?;
    fanout::record_progress(&mut tx, &broadcast, written.len(), finished).await?;
    clock.commit(tx).await?;
    let committed = clock.elapsed();

    // The next chunk goes first, so another worker can write it while this one publishes.
    if !finished {
        deps.queues
            .fan_out(FanOut::chunk(
                job.tenant_id,
                job.broadcast_id,
                lane,
                next_cursor,
            ))
            .await?;
    }
    let messages: Vec<(&str, MessagingEvent)> = written
        .iter()
        .map(|d| {
            let event = MessagingEvent::notification(EventType::Message, d.id, d.created_at);
            (d.user_id.as_str(), event)
        })
        .collect();
    let mut redis = deps.redis.clone();
    events::publish(&mut redis, deps.queues.prefix(), job.tenant_id, &messages).await?;
    let emails: Vec<Dispatch> = written
        .iter()
        .filter(|d| d.email.is_some())
        .map(|d| Dispatch::from(DeliveryKey::own_email(job.tenant_id, d.id)))
        .collect();
    deps.queues.dispatch(emails).await?;
    tracing::debug!(
        broadcast_id = %job.broadcast_id,
        lane,
        written = written.len(),
        write_ms = committed.as_millis() as u64,
        total_ms = clock.elapsed().as_millis() as u64,
        "fan-out chunk"
    );
    if finished {
        tracing::info!(broadcast_id = %job.broadcast_id, lane, "fan-out lane finished");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::lane_count;

    #[test]
    fn lanes_are_never_shorter_than_a_chunk() {
        assert_eq!(lane_count(0, 10_000, 4), 1);
        assert_eq!(lane_count(9_999, 10_000, 4), 1);
        assert_eq!(lane_count(25_000, 10_000, 4), 2);
        assert_eq!(lane_count(100_000, 10_000, 4), 4);
        assert_eq!(lane_count(100_000, 10_000, 1), 1);
    }
}
