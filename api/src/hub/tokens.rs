//! Connection tokens: `negotiate` authenticates the user and hands out a token; the WebSocket
//! upgrade that follows redeems it, once, within seconds — on any node.
//!
//! A token is a short JWT (HS256) naming the tenant and user, signed with a key derived from
//! `HERALD_JWT_SECRET`, which every node shares: the node that takes the upgrade verifies it
//! without having seen the negotiate. Single use is enforced through Redis (`SET NX` on the
//! token's id, kept as long as the token is valid), so a replayed token fails on every node.
//! The derived key differs from the user-token key, so neither kind of token passes for the
//! other.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::credentials::HubUser;
use herald_shared::domain::UserId;

/// How long a token may wait for its upgrade. The client connects right after negotiating.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(30);

/// Labels the derived key, so it is used for nothing else.
const KEY_LABEL: &[u8] = b"herald hub connection token v1";
/// The `aud` of every connection token.
const AUDIENCE: &str = "herald-hub-connection";

pub struct ConnectionTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    tid: Uuid,
    sub: String,
    aud: String,
    exp: u64,
    /// The token's id: what Redis remembers once it is used.
    jti: String,
    /// The user token's lease (its `exp` and minting key), so the node that redeems the
    /// connection token closes the connection when the user token expires or its key is revoked.
    lease_exp: u64,
    #[serde(default)]
    akid: Option<Uuid>,
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Unknown (not ours, tampered with), expired, or already used.
    Invalid,
    /// Redis could not say whether it was used; the client should negotiate again later.
    Unavailable,
}

impl ConnectionTokens {
    /// Tokens signed with a key derived from the installation's JWT secret.
    pub fn new(jwt_secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(jwt_secret).expect("HMAC takes any key");
        mac.update(KEY_LABEL);
        let key = mac.finalize().into_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        // The lifetime is already short; no extra grace.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    /// A new single-use token for `user`. JWT text is base64url and dots, so the client can
    /// append it to the connect URL unencoded.
    pub fn issue(&self, user: &HubUser) -> String {
        self.issue_expiring(
            user,
            jsonwebtoken::get_current_timestamp() + TOKEN_LIFETIME.as_secs(),
        )
    }

    fn issue_expiring(&self, user: &HubUser, exp: u64) -> String {
        let claims = Claims {
            tid: user.tenant_id,
            sub: user.user_id.as_str().to_owned(),
            aud: AUDIENCE.to_owned(),
            exp,
            jti: random_id(),
            lease_exp: user.lease.expires_at,
            akid: user.lease.key_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// The user a valid, unexpired token was issued to, without using it up.
    fn verify(&self, token: &str) -> Option<(HubUser, Claims)> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let user = HubUser {
            tenant_id: claims.tid,
            user_id: UserId::parse(&claims.sub).ok()?,
            lease: crate::hub::expiry::Lease {
                expires_at: claims.lease_exp,
                key_id: claims.akid,
            },
        };
        Some((user, claims))
    }

    /// The user a token was issued to, marking it used (for every node) in Redis.
    pub async fn redeem(
        &self,
        redis: &mut ConnectionManager,
        redis_prefix: &str,
        token: &str,
    ) -> Result<HubUser, Rejected> {
        let (user, claims) = self.verify(token).ok_or(Rejected::Invalid)?;
        let key = format!("{redis_prefix}:hub:used-token:{}", claims.jti);
        let first_use: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(TOKEN_LIFETIME.as_secs() + 1)
            .query_async(redis)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "cannot record a connection token's use in Redis");
                Rejected::Unavailable
            })?;
        first_use.map(|_| user).ok_or(Rejected::Invalid)
    }
}

/// 128 random bits, URL-safe.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_token_is_url_safe_and_names_its_user() {
        let tokens = ConnectionTokens::new(b"a-secret-of-at-least-thirty-two-bytes!");
        let token = tokens.issue(&alice());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        );
        assert_eq!(tokens.verify(&token).map(|(user, _)| user), Some(alice()));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let tokens = ConnectionTokens::new(b"a-secret-of-at-least-thirty-two-bytes!");
        let expired = tokens.issue_expiring(&alice(), jsonwebtoken::get_current_timestamp() - 1);
        assert!(tokens.verify(&expired).is_none());

        let token = tokens.issue(&alice());
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(tokens.verify(&tampered).is_none());

        let other = ConnectionTokens::new(b"another-secret-of-thirty-two-bytes!!!!");
        assert!(other.verify(&token).is_none(), "another installation's key");
        // A user token signed with the JWT secret itself is not a connection token.
        let user_token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                tid: Uuid::nil(),
                sub: "alice".into(),
                aud: AUDIENCE.into(),
                exp: jsonwebtoken::get_current_timestamp() + 30,
                jti: random_id(),
                lease_exp: u64::MAX,
                akid: None,
            },
            &EncodingKey::from_secret(b"a-secret-of-at-least-thirty-two-bytes!"),
        )
        .unwrap();
        assert!(tokens.verify(&user_token).is_none());
    }
}
