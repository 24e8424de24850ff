//! Readiness: can this process reach the stores it depends on?

use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;

/// How long a dependency may take to answer before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    pub postgres: Result<(), String>,
    pub redis: Result<(), String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.postgres.is_ok() && self.redis.is_ok()
    }

    /// The `/readyz` body every process answers: `ok` or the failure, per store.
    pub fn report(&self) -> serde_json::Value {
        let describe = |result: &Result<(), String>| {
            result
                .as_ref()
                .map_or_else(Clone::clone, |()| "ok".to_owned())
        };
        serde_json::json!({
            "status": if self.is_ready() { "ready" } else { "unavailable" },
            "postgres": describe(&self.postgres),
            "redis": describe(&self.redis),
        })
    }
}

pub async fn check(db: &PgPool, redis: &ConnectionManager) -> Readiness {
    let (postgres, redis) = tokio::join!(ping_postgres(db), ping_redis(redis.clone()));
    Readiness { postgres, redis }
}

async fn ping_postgres(db: &PgPool) -> Result<(), String> {
    let probe = crate::db::ping(db);
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

async fn ping_redis(mut redis: ConnectionManager) -> Result<(), String> {
    let ping = redis::cmd("PING");
    let probe = ping.query_async::<String>(&mut redis);
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}
