//! Which API keys are revoked, as this process last read it: user tokens carry the id of the
//! key that minted them (`akid`), and a token whose key is revoked is refused.
//!
//! Checking PostgreSQL on every request would cost a query per call; instead each process
//! re-reads the (short) list every `HERALD_JWT_REVOCATION_REFRESH_SECS` and answers from
//! memory. A revoked key's tokens therefore keep working at most that long on REST, and that
//! plus the hub's sweep interval on open hub connections.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use herald_shared::db;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::MAX_EXPIRES_IN;

/// Revocations older than the longest token lifetime (plus a day of clock slack) cannot
/// concern a live token, so the list read stays bounded.
const WINDOW_SECS: u64 = MAX_EXPIRES_IN + 24 * 3600;

#[derive(Default)]
pub struct RevokedKeys {
    ids: RwLock<Arc<HashSet<Uuid>>>,
}

impl RevokedKeys {
    /// Reads the list once (so the process starts knowing it), then keeps it fresh in the
    /// background.
    pub async fn load(db: &PgPool, refresh_every: Duration) -> sqlx::Result<Arc<Self>> {
        let keys = Arc::new(Self::default());
        keys.refresh(db).await?;
        tokio::spawn(refresh_forever(keys.clone(), db.clone(), refresh_every));
        Ok(keys)
    }

    pub fn contains(&self, key_id: &Uuid) -> bool {
        self.read().contains(key_id)
    }

    async fn refresh(&self, db: &PgPool) -> sqlx::Result<()> {
        let ids: HashSet<Uuid> = db::api_keys::revoked_within(db, WINDOW_SECS)
            .await?
            .into_iter()
            .collect();
        *self.ids.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ids);
        Ok(())
    }

    fn read(&self) -> Arc<HashSet<Uuid>> {
        self.ids.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// While PostgreSQL cannot be read the last list stays in force (keys are never un-revoked,
/// so it is only missing the newest revocations) and the failure is logged.
async fn refresh_forever(keys: Arc<RevokedKeys>, db: PgPool, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = keys.refresh(&db).await {
            tracing::warn!(%error, "could not re-read the revoked API keys; keeping the last list");
        }
    }
}
