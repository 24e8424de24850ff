//! Publishing real-time events from request handlers.

use herald_shared::events::{self, MessagingEvent};
use uuid::Uuid;

use crate::state::AppState;

/// Publishes events for changes that are already committed. A Redis failure is logged, never
/// turned into an error: the change stands, and clients catch up through REST.
pub async fn publish_after_commit<U: AsRef<str>>(
    state: &AppState,
    tenant_id: Uuid,
    events: &[(U, MessagingEvent)],
) {
    let mut redis = state.redis.clone();
    let prefix = &state.config.redis.prefix;
    if let Err(error) = events::publish(&mut redis, prefix, tenant_id, events).await {
        tracing::warn!(%error, %tenant_id, count = events.len(), "could not publish real-time events");
    }
}
