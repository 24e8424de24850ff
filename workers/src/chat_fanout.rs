//! The `ChatFanOut` job: one chunk of a chat broadcast per run (see `herald_shared::chat_fanout`).

use apalis::prelude::{BoxDynError, Data};
use herald_shared::chat_fanout;
use herald_shared::jobs::ChatFanOut;

use crate::runtime::Deps;

pub async fn chat_fan_out(job: ChatFanOut, deps: Data<Deps>) -> Result<(), BoxDynError> {
    let Some(chunk) = chat_fanout::write_chunk(
        &deps.db,
        job.tenant_id,
        job.broadcast_id,
        Some(job.cursor),
        deps.config.fanout_chunk_size,
    )
    .await?
    else {
        return Ok(());
    };
    // The next chunk goes first, so another worker can write it while this one publishes.
    if !chunk.finished {
        deps.queues
            .chat_fan_out(ChatFanOut {
                cursor: chunk.cursor,
                ..job.clone()
            })
            .await?;
    }
    let mut redis = deps.redis.clone();
    chat_fanout::publish_chunk(
        &deps.db,
        &mut redis,
        deps.queues.prefix(),
        job.tenant_id,
        &chunk.written,
    )
    .await?;
    tracing::debug!(
        broadcast_id = %job.broadcast_id,
        written = chunk.written.len(),
        finished = chunk.finished,
        "chat fan-out chunk"
    );
    Ok(())
}
