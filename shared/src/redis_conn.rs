//! Redis connections: a multiplexed, self-reconnecting manager for commands and publishing.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RedisConfig;

pub async fn connect(config: &RedisConfig) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(config.url.as_str()).context("REDIS_URL is invalid")?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    tokio::time::timeout(
        Duration::from_secs(6),
        ConnectionManager::new_with_config(client, manager_config),
    )
    .await
    .map_err(anyhow::Error::from)
    .and_then(|result| result.map_err(anyhow::Error::from))
    .with_context(|| format!("cannot connect to Redis at {}", config.url))
}
