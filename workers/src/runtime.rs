//! What every worker process shares: configuration, connections, health endpoints, names.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_shared::config::WorkerConfig;
use herald_shared::jobs::Queues;
use herald_shared::{db, redis_conn};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler, http::StatusCode};
use redis::aio::ConnectionManager;
use serde_json::json;
use sqlx::PgPool;

/// The dependencies job handlers receive (`Data<Deps>`). Cheap to clone.
#[derive(Clone)]
pub struct Deps {
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub queues: Queues,
    pub config: Arc<WorkerConfig>,
}

impl Deps {
    /// Connects to the stores; refuses to run on an unmigrated database (workers never migrate:
    /// that is the `release` step's job).
    pub async fn connect(config: WorkerConfig) -> anyhow::Result<Self> {
        let db = db::connect(&config.database).await?;
        db::ensure_schema(&db, false).await?;
        let redis = redis_conn::connect(&config.redis).await?;
        Ok(Self {
            queues: Queues::new(redis.clone(), &config.redis.prefix),
            db,
            redis,
            config: Arc::new(config),
        })
    }
}

/// A worker name unique across restarts and hosts: apalis-redis ignores a restarted worker
/// whose name is still registered (apalis-redis lets such a worker idle silently).
pub fn worker_name(kind: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    format!(
        "{kind}-{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Serves `/healthz` and `/readyz` on `PORT` (when set; 0 lets the kernel pick one, and the log
/// says which) until the process ends.
pub fn serve_health(deps: &Deps) -> anyhow::Result<()> {
    let Some(port) = deps.config.health_port else {
        return Ok(());
    };
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} (PORT)"))?;
    listener.set_nonblocking(true)?;
    tracing::info!(
        "listening on http://{} (/healthz and /readyz)",
        listener.local_addr()?
    );
    let acceptor = poem::listener::TcpAcceptor::from_std(listener)?;
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .data(deps.clone());
    tokio::spawn(async move {
        if let Err(error) = Server::new_with_acceptor(acceptor).run(app).await {
            tracing::error!(%error, "health endpoint stopped");
        }
    });
    Ok(())
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[handler]
async fn readyz(deps: Data<&Deps>) -> Response {
    let readiness = herald_shared::health::check(&deps.db, &deps.redis).await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(readiness.report()).with_status(status).into_response()
}

/// How long in-flight jobs may take to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
