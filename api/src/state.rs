//! What every request handler can reach.

use std::sync::Arc;

use herald_shared::auth::JwtKeys;
use herald_shared::config::ApiConfig;
use herald_shared::jobs::Queues;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

use crate::revoked_keys::RevokedKeys;

/// Shared by all requests; cheap to clone (every field is a handle).
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub jwt: Arc<JwtKeys>,
    pub queues: Queues,
    pub config: Arc<ApiConfig>,
    /// API keys whose user tokens must be refused.
    pub revoked_keys: Arc<RevokedKeys>,
}
