//! Connections end when their credential does: when the user's token expires, or when the API
//! key that minted it is revoked. Either way the client is sent a Close with
//! `allowReconnect: true`, so the official client reconnects through its `accessTokenFactory`:
//! a fresh token (from a key still valid) connects again; the revoked one is refused at
//! negotiate and upgrade with 401.
//!
//! One sweep per node walks the registry every `HERALD_HUB_CREDENTIAL_SWEEP_SECS` rather
//! than a timer per connection: tens of thousands of idle connections would otherwise each
//! hold a timer entry, and revocation has no deadline to set a timer for.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::outbox::Delivery;
use super::registry::Registry;
use crate::revoked_keys::RevokedKeys;

/// What a connection's credential allows: until when, and on whose authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The token's `exp`, in seconds since the epoch.
    pub expires_at: u64,
    /// The API key that minted the token, when known.
    pub key_id: Option<Uuid>,
}

impl Lease {
    /// Why a connection holding this lease must end at `now`, if it must.
    fn ended(&self, now: u64, revoked: &RevokedKeys) -> Option<Delivery> {
        if self.expires_at <= now {
            Some(Delivery::TokenExpired)
        } else if self.key_id.is_some_and(|key| revoked.contains(&key)) {
            Some(Delivery::KeyRevoked)
        } else {
            None
        }
    }
}

/// Starts the node's sweep.
pub fn spawn_sweep(registry: Arc<Registry>, revoked: Arc<RevokedKeys>, every: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let ended = sweep(&registry, &revoked, unix_now());
            if ended > 0 {
                tracing::info!(
                    ended,
                    "closed hub connections whose token expired or was revoked"
                );
            }
        }
    });
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Ends every connection whose lease is over; returns how many.
fn sweep(registry: &Registry, revoked: &RevokedKeys, now: u64) -> usize {
    let mut ended = 0;
    registry.for_each_connection(|outbox| {
        if let Some(why) = outbox.lease().and_then(|lease| lease.ended(now, revoked)) {
            outbox.end(why);
            ended += 1;
        }
    });
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sweep_ends_expired_connections_only() {
        let (registry, _commands) = Registry::new(8);
        let revoked = RevokedKeys::default();
        let (expiring, _) = registry.join("u:alice");
        let (lasting, _) = registry.join("u:bob");
        let (unleased, _) = registry.join("u:carol");
        expiring.outbox().set_lease(Lease {
            expires_at: 100,
            key_id: None,
        });
        lasting.outbox().set_lease(Lease {
            expires_at: 200,
            key_id: Some(Uuid::now_v7()),
        });
        assert_eq!(sweep(&registry, &revoked, 99), 0);
        assert_eq!(sweep(&registry, &revoked, 100), 1);
        let delivery = expiring.outbox().take(&mut Vec::new(), 8, true).await;
        assert_eq!(delivery, Delivery::TokenExpired);
        for other in [&lasting, &unleased] {
            assert!(other.outbox().push(Arc::from("event"), 8), "still open");
        }
    }
}
