//! The `FanOut` job: one chunk of a broadcast per run (see `herald_shared::db::fanout`).

use apalis::prelude::{BoxDynError, Data};
use herald_shared::db::{self, fanout};
use herald_shared::domain::broadcast::BroadcastStatus;
use herald_shared::events::{self, EventType, MessagingEvent};
use herald_shared::jobs::{FanOut, SendEmail};

use crate::runtime::Deps;

pub async fn fan_out(job: FanOut, deps: Data<Deps>) -> Result<(), BoxDynError> {
    let started = std::time::Instant::now();
    let chunk_size = deps.config.fanout_chunk_size;
    let mut tx = deps.db.begin().await?;
    let Some(broadcast) =
        db::broadcasts::get(&mut tx, job.tenant_id, job.broadcast_id, true).await?
    else {
        return Ok(());
    };
    // Cancelled or finished, or a stale copy of a job whose chunk was already written: the
    // cursor moves with every chunk, so only the job carrying the current cursor may proceed.
    if broadcast.status.is_final() || broadcast.cursor != job.cursor {
        return Ok(());
    }
    if broadcast.status != BroadcastStatus::FanningOut {
        let total = fanout::audience_size(&mut tx, &broadcast).await?;
        fanout::start(&mut tx, &broadcast, total).await?;
    }
    let cursor = job.cursor.clone().unwrap_or_default();
    // One recipient more than the chunk tells whether another chunk follows, so the last chunk
    // completes the broadcast instead of an empty job after it.
    let mut recipients = fanout::next_chunk(&mut tx, &broadcast, &cursor, chunk_size + 1).await?;
    let finished = recipients.len() as i64 <= chunk_size;
    recipients.truncate(chunk_size as usize);
    let written = fanout::insert_chunk(&mut tx, &broadcast, &cursor, &recipients).await?;
    let next_cursor = recipients.last().map_or(cursor, |r| r.user_id.clone());
    fanout::advance(&mut tx, &broadcast, &next_cursor, written.len(), finished).await?;
    tx.commit().await?;
    let committed = started.elapsed();

    // The next chunk goes first, so another worker can write it while this one publishes.
    if !finished {
        deps.queues
            .fan_out(FanOut {
                cursor: Some(next_cursor),
                ..job.clone()
            })
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
    let emails: Vec<SendEmail> = written
        .iter()
        .filter(|d| d.email.is_some())
        .map(|d| SendEmail {
            tenant_id: job.tenant_id,
            notification_id: d.id,
        })
        .collect();
    deps.queues.send_emails(emails).await?;
    tracing::debug!(
        broadcast_id = %job.broadcast_id,
        written = written.len(),
        write_ms = committed.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "fan-out chunk"
    );
    if finished {
        tracing::info!(broadcast_id = %job.broadcast_id, "broadcast completed");
    }
    Ok(())
}
