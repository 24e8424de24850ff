//! JSON Web Tokens for end users: HS256 tokens Herald issues by token exchange, and optionally
//! RS256 tokens from an external identity service.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::config::{ExternalJwtConfig, JwtConfig};
use crate::domain::UserId;

/// Clock skew tolerated between Herald's nodes and token issuers.
const LEEWAY_SECS: u64 = 5;

/// The claims of a token Herald issues.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The tenant id.
    pub tid: Uuid,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    /// The id (never the key) of the API key that minted the token by token exchange, so
    /// revoking the key revokes its tokens. Absent from tokens minted before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub akid: Option<Uuid>,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub tenant_id: Uuid,
    pub user_id: UserId,
    /// When the token stops being valid (`exp`, seconds since the epoch).
    pub expires_at: u64,
    /// The API key that minted it (Herald's own tokens); `None` for external tokens and for
    /// tokens minted before the key was recorded.
    pub key_id: Option<Uuid>,
}

/// Why a token was refused; the text goes into the 401 body and `WWW-Authenticate`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("tokens signed with {0} are not accepted")]
    UnsupportedAlgorithm(String),
    #[error("the token's claims are invalid: {0}")]
    BadClaims(String),
    #[error("the token is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    #[error("the token was issued in the future (`iat`)")]
    IssuedInTheFuture,
    #[error("the API key that issued the token has been revoked")]
    KeyRevoked,
}

/// Signing and verification keys, built once at startup.
pub struct JwtKeys {
    encoding: EncodingKey,
    hs256: (DecodingKey, Validation),
    external: Option<External>,
    issuer: String,
    default_ttl_secs: u64,
}

struct External {
    key: DecodingKey,
    validation: Validation,
    user_claim: String,
    tenant_claim: String,
}

impl JwtKeys {
    pub fn new(config: &JwtConfig) -> Result<Self, jsonwebtoken::errors::Error> {
        let secret = config.secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let external = config.external.as_ref().map(External::new).transpose()?;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            hs256: (DecodingKey::from_secret(secret), validation),
            external,
            issuer: config.issuer.clone(),
            default_ttl_secs: config.ttl_secs,
        })
    }

    pub fn default_ttl_secs(&self) -> u64 {
        self.default_ttl_secs
    }

    /// Issues an HS256 token for `user_id` in `tenant_id`, valid for `ttl_secs`, minted by the
    /// API key `key_id`.
    pub fn issue(
        &self,
        tenant_id: Uuid,
        user_id: &UserId,
        ttl_secs: u64,
        key_id: Uuid,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.as_str().to_owned(),
            tid: tenant_id,
            iat: now,
            exp: now + ttl_secs,
            iss: self.issuer.clone(),
            akid: Some(key_id),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies a presented token and says whom it speaks for.
    pub fn verify(&self, token: &str) -> Result<TokenSubject, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        match (header.alg, &self.external) {
            (Algorithm::HS256, _) => {
                let (key, validation) = &self.hs256;
                let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
                    .map_err(token_error)?
                    .claims;
                check_issued_at(Some(claims.iat))?;
                Ok(TokenSubject {
                    tenant_id: claims.tid,
                    user_id: UserId::parse(claims.sub)
                        .map_err(|e| TokenError::BadClaims(format!("sub: {e}")))?,
                    expires_at: claims.exp,
                    key_id: claims.akid,
                })
            }
            (Algorithm::RS256, Some(external)) => external.verify(token),
            (other, _) => Err(TokenError::UnsupportedAlgorithm(format!("{other:?}"))),
        }
    }
}

impl External {
    fn new(config: &ExternalJwtConfig) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // jsonwebtoken compares `iss` and `aud` only when the token has them: a configured one
        // must also be required, or a token without it would pass.
        let mut required = vec!["exp"];
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            key: DecodingKey::from_rsa_pem(config.public_key_pem.as_bytes())?,
            validation,
            user_claim: config.user_claim.clone(),
            tenant_claim: config.tenant_claim.clone(),
        })
    }

    fn verify(&self, token: &str) -> Result<TokenSubject, TokenError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(token_error)?;
        let claim = |name: &str| {
            data.claims
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| TokenError::BadClaims(format!("missing string claim `{name}`")))
        };
        let tenant_id = Uuid::parse_str(claim(&self.tenant_claim)?).map_err(|_| {
            TokenError::BadClaims(format!("`{}` is not a tenant id", self.tenant_claim))
        })?;
        let user_id = UserId::parse(claim(&self.user_claim)?)
            .map_err(|e| TokenError::BadClaims(format!("{}: {e}", self.user_claim)))?;
        let number = |name: &str| match data.claims.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| TokenError::BadClaims(format!("`{name}` is not a number"))),
        };
        check_issued_at(number("iat")?)?;
        let expires_at =
            number("exp")?.ok_or_else(|| TokenError::BadClaims("missing claim `exp`".into()))?;
        Ok(TokenSubject {
            tenant_id,
            user_id,
            expires_at,
            key_id: None,
        })
    }
}

/// Refuses a token issued in the future (beyond the clock skew allowed): jsonwebtoken does
/// not look at `iat`, and such a token is forged or comes from an issuer whose clock is wrong.
fn check_issued_at(iat: Option<u64>) -> Result<(), TokenError> {
    match iat {
        Some(iat) if iat > jsonwebtoken::get_current_timestamp() + LEEWAY_SECS => {
            Err(TokenError::IssuedInTheFuture)
        }
        _ => Ok(()),
    }
}

fn token_error(error: jsonwebtoken::errors::Error) -> TokenError {
    match error.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm => TokenError::UnsupportedAlgorithm("this algorithm".into()),
        ErrorKind::InvalidIssuer => TokenError::BadClaims("unexpected issuer".into()),
        ErrorKind::InvalidAudience => TokenError::BadClaims("unexpected audience".into()),
        ErrorKind::MissingRequiredClaim(claim) => {
            TokenError::BadClaims(format!("missing claim `{claim}`"))
        }
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidClaimFormat(claim) => {
            TokenError::BadClaims(format!("`{claim}` is not a number"))
        }
        ErrorKind::Json(_) => TokenError::BadClaims("unexpected claim types".into()),
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(&JwtConfig {
            secret: SecretString::from(secret.to_owned()),
            ttl_secs: 60,
            issuer: "herald".into(),
            external: None,
            revocation_refresh_secs: 15,
        })
        .unwrap()
    }

    fn sign(keys: &JwtKeys, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::default(), claims, &keys.encoding).unwrap()
    }

    #[test]
    fn an_issued_token_verifies_to_its_subject_and_names_its_key() {
        let keys = keys("k".repeat(32).as_str());
        let (tenant, key_id) = (Uuid::now_v7(), Uuid::now_v7());
        let user = UserId::parse("alice").unwrap();
        let token = keys.issue(tenant, &user, 60, key_id).unwrap();
        let subject = keys.verify(&token).unwrap();
        assert_eq!((subject.tenant_id, &subject.user_id), (tenant, &user));
        assert_eq!(subject.key_id, Some(key_id));
        let now = jsonwebtoken::get_current_timestamp();
        assert!((now + 59..=now + 61).contains(&subject.expires_at));
    }

    #[test]
    fn tokens_signed_with_another_secret_or_expired_are_refused() {
        let ours = keys("k".repeat(32).as_str());
        let theirs = keys("x".repeat(32).as_str());
        let user = UserId::parse("alice").unwrap();
        let forged = theirs
            .issue(Uuid::now_v7(), &user, 60, Uuid::now_v7())
            .unwrap();
        assert_eq!(ours.verify(&forged), Err(TokenError::BadSignature));
        assert_eq!(ours.verify("not.a.jwt"), Err(TokenError::Malformed));

        let now = jsonwebtoken::get_current_timestamp();
        let expired = serde_json::json!({
            "sub": "alice", "tid": Uuid::now_v7(), "iat": now - 3600, "exp": now - 600, "iss": "herald",
        });
        assert_eq!(
            ours.verify(&sign(&ours, &expired)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tokens_not_valid_yet_or_issued_in_the_future_are_refused() {
        let keys = keys("k".repeat(32).as_str());
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |iat: u64, nbf: Option<u64>| {
            let mut claims = serde_json::json!({
                "sub": "alice", "tid": Uuid::now_v7(), "iat": iat, "exp": now + 3600, "iss": "herald",
            });
            if let Some(nbf) = nbf {
                claims["nbf"] = nbf.into();
            }
            sign(&keys, &claims)
        };
        assert_eq!(
            keys.verify(&claims(now, Some(now + 600))),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            keys.verify(&claims(now + 600, None)),
            Err(TokenError::IssuedInTheFuture)
        );
        // Within the clock skew allowed, and without a key id (tokens minted before it was
        // recorded), a token is accepted.
        let subject = keys.verify(&claims(now + 2, Some(now + 2))).unwrap();
        assert_eq!(subject.key_id, None);
    }
}
