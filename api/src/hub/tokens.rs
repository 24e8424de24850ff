//! Connection tokens: `negotiate` authenticates the user and hands out a token; the WebSocket
//! upgrade that follows redeems it, once, within seconds.
//!
//! Tokens live in this node's memory, as ASP.NET SignalR keeps them: negotiate and upgrade must
//! reach the same node (sticky sessions), or clients skip negotiation (README, "Real-time hub").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::credentials::HubUser;

/// How long a token may wait for its upgrade. The client connects right after negotiating.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(30);

/// Expired tokens are swept at most this often, on issue: no background task needed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

pub struct ConnectionTokens {
    state: Mutex<State>,
}

struct State {
    pending: HashMap<String, (HubUser, Instant)>,
    last_sweep: Instant,
}

impl Default for ConnectionTokens {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                pending: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }
}

impl ConnectionTokens {
    /// A new single-use token for `user`: base64url of 16 random bytes, because the client
    /// appends it to the connect URL without encoding it.
    pub fn issue(&self, user: HubUser) -> String {
        self.issue_at(user, Instant::now())
    }

    /// The user a token was issued to; `None` if unknown, already used or expired.
    pub fn redeem(&self, token: &str) -> Option<HubUser> {
        self.redeem_at(token, Instant::now())
    }

    fn issue_at(&self, user: HubUser, now: Instant) -> String {
        let token = random_id();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(state.last_sweep) >= SWEEP_EVERY {
            state.pending.retain(|_, (_, expires)| *expires > now);
            state.last_sweep = now;
        }
        state
            .pending
            .insert(token.clone(), (user, now + TOKEN_LIFETIME));
        token
    }

    fn redeem_at(&self, token: &str, now: Instant) -> Option<HubUser> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (user, expires) = state.pending.remove(token)?;
        (expires > now).then_some(user)
    }
}

/// 128 random bits, URL-safe.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::domain::UserId;
    use uuid::Uuid;

    fn alice() -> HubUser {
        HubUser {
            tenant_id: Uuid::nil(),
            user_id: UserId::parse("alice").unwrap(),
            lease: crate::hub::expiry::Lease {
                expires_at: u64::MAX,
                key_id: None,
            },
        }
    }

    #[test]
    fn a_token_is_url_safe_and_redeemed_once() {
        let tokens = ConnectionTokens::default();
        let token = tokens.issue(alice());
        assert_eq!(token.len(), 22);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(tokens.redeem(&token), Some(alice()));
        assert_eq!(tokens.redeem(&token), None);
        assert_eq!(tokens.redeem("never-issued"), None);
    }

    #[test]
    fn a_token_expires_after_its_lifetime_and_is_swept() {
        let tokens = ConnectionTokens::default();
        let start = Instant::now();
        let expired = tokens.issue_at(alice(), start);
        let later = start + TOKEN_LIFETIME + Duration::from_millis(1);
        assert_eq!(tokens.redeem_at(&expired, later), None);

        let forgotten = tokens.issue_at(alice(), start);
        let fresh = tokens.issue_at(alice(), later + SWEEP_EVERY);
        let pending = &tokens.state.lock().unwrap().pending;
        assert!(!pending.contains_key(&forgotten), "swept on the next issue");
        assert!(pending.contains_key(&fresh));
    }
}
