//! The node's one Redis pub/sub connection: it subscribes to the channels of the users
//! connected here, forwards every message to their connections, and when Redis goes away it
//! reconnects and subscribes again to everyone still connected.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;

use super::protocol;
use super::registry::{Command, Registry};

/// Channels per SUBSCRIBE when re-subscribing a whole node (15,000 users is 15 commands).
const SUBSCRIBE_CHUNK: usize = 1_000;
/// Commands applied per round: a burst of new connections becomes a few SUBSCRIBEs.
const COMMAND_BATCH: usize = 1_024;
/// A pub/sub connection carries no traffic when nothing is published; a periodic PING finds a
/// connection that died silently (a half-open TCP connection after a network failure).
const HEALTH_PING_EVERY: Duration = Duration::from_secs(30);
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Runs for the life of the node.
pub async fn run(
    client: redis::Client,
    registry: Arc<Registry>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = RECONNECT_MIN;
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
        first = false;
        let (mut sink, stream) = match connect(&client).await {
            Ok(parts) => parts,
            Err(error) => {
                tracing::warn!(%error, "cannot open the Redis pub/sub connection; retrying");
                continue;
            }
        };
        // Everyone connected now. Commands queued meanwhile still run afterwards; SUBSCRIBE
        // is idempotent, so repeating one is harmless.
        let channels = registry.channels();
        if let Err(error) = subscribe(&mut sink, &registry, &channels).await {
            tracing::warn!(%error, "re-subscribing after connecting to Redis failed; retrying");
            continue;
        }
        if !channels.is_empty() {
            tracing::info!(users = channels.len(), "subscribed to Redis pub/sub");
        }
        let told = registry.subscriptions_restored();
        if told > 0 {
            tracing::warn!(
                connections = told,
                "told connections to reconnect and catch up: events published while the Redis \
                 subscription was down never reached them"
            );
        }
        backoff = RECONNECT_MIN;
        tokio::select! {
            () = forward(stream, &registry) => {
                tracing::warn!("the Redis pub/sub connection closed; reconnecting");
            }
            result = apply(&mut sink, &registry, &mut commands) => match result {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "the Redis pub/sub connection failed; reconnecting");
                }
            },
        }
        // Whatever was published from now until the next SUBSCRIBE is lost to this node.
        registry.subscriptions_lost();
    }
}

async fn connect(client: &redis::Client) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
    match tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await {
        Ok(pubsub) => Ok(pubsub?.split()),
        Err(_) => Err(timed_out()),
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}

/// Hands each published event to the connections of its user, until the connection closes.
async fn forward(mut stream: PubSubStream, registry: &Registry) {
    while let Some(message) = stream.next().await {
        let channel = message.get_channel_name();
        match protocol::event_record(message.get_payload_bytes()) {
            Some(record) => {
                registry.deliver(channel, &record);
            }
            None => tracing::warn!(channel, "dropped a published event that is not JSON"),
        }
    }
}

/// Applies subscription changes in order; returns `Ok` when the registry is gone (the node is
/// stopping) and `Err` when Redis failed.
async fn apply(
    sink: &mut PubSubSink,
    registry: &Registry,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> redis::RedisResult<()> {
    let mut health = tokio::time::interval_at(
        tokio::time::Instant::now() + HEALTH_PING_EVERY,
        HEALTH_PING_EVERY,
    );
    let mut batch = Vec::with_capacity(COMMAND_BATCH);
    loop {
        tokio::select! {
            received = commands.recv_many(&mut batch, COMMAND_BATCH) => {
                if received == 0 {
                    return Ok(());
                }
            }
            _ = health.tick() => {
                match tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(pong) => pong.map(drop)?,
                    Err(_) => return Err(timed_out()),
                }
                continue;
            }
        }
        // Consecutive commands of one kind become one Redis command; order is kept.
        let mut pending = batch.drain(..).peekable();
        while let Some(command) = pending.next() {
            match command {
                Command::Subscribe {
                    channel,
                    generation,
                } => {
                    let mut run = vec![(channel, generation)];
                    while let Some(Command::Subscribe {
                        channel,
                        generation,
                    }) = pending.next_if(|next| matches!(next, Command::Subscribe { .. }))
                    {
                        run.push((channel, generation));
                    }
                    subscribe(sink, registry, &run).await?;
                }
                Command::Unsubscribe { channel } => {
                    let mut run = vec![channel];
                    while let Some(Command::Unsubscribe { channel }) =
                        pending.next_if(|next| matches!(next, Command::Unsubscribe { .. }))
                    {
                        run.push(channel);
                    }
                    let names: Vec<&str> = run.iter().map(|channel| &**channel).collect();
                    within_timeout(sink.unsubscribe(names)).await?;
                }
            }
        }
    }
}

/// Subscribes (in chunks) and marks the channels subscribed once Redis confirmed them.
async fn subscribe(
    sink: &mut PubSubSink,
    registry: &Registry,
    channels: &[(Arc<str>, u64)],
) -> redis::RedisResult<()> {
    for chunk in channels.chunks(SUBSCRIBE_CHUNK) {
        let names: Vec<&str> = chunk.iter().map(|(channel, _)| &**channel).collect();
        within_timeout(sink.subscribe(names)).await?;
        registry.confirm(chunk);
    }
    Ok(())
}

async fn within_timeout(
    command: impl Future<Output = redis::RedisResult<()>>,
) -> redis::RedisResult<()> {
    tokio::time::timeout(REDIS_TIMEOUT, command)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}
