//! Observing the real-time events Herald publishes on Redis.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

/// A subscription to one user's channel.
pub struct EventListener {
    pubsub: redis::aio::PubSub,
}

impl EventListener {
    pub async fn subscribe(redis_url: &str, prefix: &str, tenant_id: Uuid, user_id: &str) -> Self {
        let client = redis::Client::open(redis_url).expect("redis url");
        let mut pubsub = client.get_async_pubsub().await.expect("redis pubsub");
        let channel = herald_shared::events::user_channel(prefix, tenant_id, user_id);
        pubsub.subscribe(channel).await.expect("subscribe");
        Self { pubsub }
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Value> {
        let message = tokio::time::timeout(timeout, self.pubsub.on_message().next())
            .await
            .ok()??;
        let payload: String = message.get_payload().ok()?;
        serde_json::from_str(&payload).ok()
    }

    /// The next event; panics if none arrives within 5 s.
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }
}
