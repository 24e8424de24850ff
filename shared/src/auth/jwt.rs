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
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub tenant_id: Uuid,
    pub user_id: UserId,
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

    /// Issues an HS256 token for `user_id` in `tenant_id`, valid for `ttl_secs`.
    pub fn issue(
        &self,
        tenant_id: Uuid,
        user_id: &UserId,
        ttl_secs: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.as_str().to_owned(),
            tid: tenant_id,
            iat: now,
            exp: now + ttl_secs,
            iss: self.issuer.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies a presented token and says whom it speaks for.
    pub fn verify(&self, token: &str) -> Result<TokenSubject, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        match (header.alg, &self.external) {
            (Algorithm::HS256, _) => {
                let (key, validation) = &self.hs256;
                let data =
                    jsonwebtoken::decode::<Claims>(token, key, validation).map_err(token_error)?;
                Ok(TokenSubject {
                    tenant_id: data.claims.tid,
                    user_id: UserId::parse(data.claims.sub)
                        .map_err(|e| TokenError::BadClaims(format!("sub: {e}")))?,
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
        validation.set_required_spec_claims(&["exp"]);
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
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
        Ok(TokenSubject { tenant_id, user_id })
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
        ErrorKind::ImmatureSignature => TokenError::BadClaims("not valid yet".into()),
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
        })
        .unwrap()
    }

    #[test]
    fn an_issued_token_verifies_to_its_subject() {
        let keys = keys("k".repeat(32).as_str());
        let tenant = Uuid::now_v7();
        let user = UserId::parse("alice").unwrap();
        let token = keys.issue(tenant, &user, 60).unwrap();
        assert_eq!(
            keys.verify(&token),
            Ok(TokenSubject {
                tenant_id: tenant,
                user_id: user
            })
        );
    }

    #[test]
    fn tokens_signed_with_another_secret_or_expired_are_refused() {
        let ours = keys("k".repeat(32).as_str());
        let theirs = keys("x".repeat(32).as_str());
        let user = UserId::parse("alice").unwrap();
        let forged = theirs.issue(Uuid::now_v7(), &user, 60).unwrap();
        assert_eq!(ours.verify(&forged), Err(TokenError::BadSignature));
        assert_eq!(ours.verify("not.a.jwt"), Err(TokenError::Malformed));

        let now = jsonwebtoken::get_current_timestamp();
        let expired = Claims {
            sub: "alice".into(),
            tid: Uuid::now_v7(),
            iat: now - 3600,
            exp: now - 600,
            iss: "herald".into(),
        };
        let token = jsonwebtoken::encode(&Header::default(), &expired, &ours.encoding).unwrap();
        assert_eq!(ours.verify(&token), Err(TokenError::Expired));
    }
}
