//! Redis connections: a multiplexed, self-reconnecting manager for commands and publishing.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo, RedisResult};

use crate::config::RedisConfig;

/// A client for `url` whose sockets send at once (`TCP_NODELAY`).
///
/// redis-rs leaves Nagle's algorithm on. One multiplexed connection carries the job queue's
/// scripts, acknowledgements and event publishes of many tasks at once, so a command often
/// goes out while the previous one is still unacknowledged; Nagle then holds it back until
/// Redis answers. Every mainstream Redis client (hiredis, go-redis, …) disables Nagle.
pub fn client(url: &str) -> RedisResult<redis::Client> {
    let info = url
        .into_connection_info()?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    redis::Client::open(info)
}

pub async fn connect(config: &RedisConfig) -> anyhow::Result<ConnectionManager> {
    let client = client(config.url.as_str()).context("REDIS_URL is invalid")?;
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
    .with_context(|| {
        format!(
            "cannot connect to Redis at {}",
            crate::redact::redact_url(&config.url)
        )
    })
}
