//! Sending a chat broadcast, a chunk of target chats at a time: used by the API for small
//! broadcasts (inline) and by `herald-fanout` for large ones (the `ChatFanOut` job).
//!
//! Writing and publishing are separate steps so the worker can queue the next chunk in between:
//! another worker writes it while this one publishes.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::chat_broadcasts::{self, Chunk, Written};
use crate::db::chats;
use crate::db::commit_window::CommitClock;
use crate::domain::chat::ChatBroadcastStatus;
use crate::events::{self, EventType, MessagingEvent};

/// Writes the next chunk of a broadcast in one transaction. `None` when there is nothing to do:
/// the broadcast is gone or complete, or `expected_cursor` (a job's) is stale because another
/// run already wrote that chunk.
pub async fn write_chunk(
    db: &PgPool,
    tenant_id: Uuid,
    broadcast_id: Uuid,
    expected_cursor: Option<i32>,
    chunk_size: i64,
) -> sqlx::Result<Option<Chunk>> {
    let clock = CommitClock::start();
    let mut tx = db.begin().await?;
    let Some(broadcast) = chat_broadcasts::get(&mut tx, tenant_id, broadcast_id, true).await?
    else {
        return Ok(None);
    };
    let stale = expected_cursor.is_some_and(|cursor| cursor != broadcast.cursor);
    if broadcast.status == ChatBroadcastStatus::Completed || stale {
        return Ok(None);
    }
    let chunk = chat_broadcasts::send_chunk(&mut tx, &broadcast, chunk_size).await?;
    clock.commit(tx).await?;
    Ok(Some(chunk))
}

/// Publishes `ChatMessage` to every member of the chats a chunk wrote to, in one pipelined round
/// trip.
pub async fn publish_chunk(
    db: &PgPool,
    redis: &mut ConnectionManager,
    prefix: &str,
    tenant_id: Uuid,
    written: &[Written],
) -> anyhow::Result<()> {
    if written.is_empty() {
        return Ok(());
    }
    let chat_ids: Vec<Uuid> = written.iter().map(|w| w.chat_id).collect();
    let mut conn = db.acquire().await?;
    let members = chats::members_of(&mut conn, tenant_id, &chat_ids).await?;
    drop(conn);
    let by_chat: HashMap<Uuid, &Written> = written.iter().map(|w| (w.chat_id, w)).collect();
    let events: Vec<(String, MessagingEvent)> = members
        .into_iter()
        .filter_map(|(chat_id, user_id)| {
            let message = by_chat.get(&chat_id)?;
            let event = MessagingEvent::chat(
                EventType::ChatMessage,
                message.id,
                chat_id,
                message.created_at,
            );
            Some((user_id, event))
        })
        .collect();
    events::publish(redis, prefix, tenant_id, &events).await?;
    Ok(())
}
