//! JWT settings: Herald's own HS256 tokens, and optionally RS256 tokens from an external
//! identity service.

use std::path::Path;

use base64::Engine;
use secrecy::SecretString;

use super::{Env, Environment};

/// Where a development machine keeps its generated signing secret, so every local process
/// (API, hub, workers) verifies the same tokens across restarts.
const DEV_SECRET_FILE: &str = ".herald/dev-jwt-secret";

/// Shortest secret accepted for HS256: 256 bits, as RFC 7518 §3.2 requires.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// `HERALD_JWT_SECRET`: HS256 signing key for tokens issued by token exchange.
    pub secret: SecretString,
    /// `HERALD_JWT_TTL_SECS`: default token lifetime.
    pub ttl_secs: u64,
    /// `HERALD_JWT_ISSUER`: the `iss` claim Herald writes and expects.
    pub issuer: String,
    /// RS256 tokens from an external identity service, when configured.
    pub external: Option<ExternalJwtConfig>,
    /// `HERALD_JWT_REVOCATION_REFRESH_SECS`: how often each process re-reads which API keys are
    /// revoked (1–60), which bounds how long a revoked key's tokens keep working.
    pub revocation_refresh_secs: u64,
}

/// Re-reading the revoked keys every 15 s keeps a revoked key's tokens alive at most that long
/// on REST (and that plus the hub's sweep on open connections): well under a minute.
const DEFAULT_REVOCATION_REFRESH_SECS: u64 = 15;
const MAX_REVOCATION_REFRESH_SECS: u64 = 60;

/// Verification of RS256 tokens minted by another service (Auth0, Keycloak, …).
#[derive(Clone, Debug)]
pub struct ExternalJwtConfig {
    /// `HERALD_JWT_RS256_PUBLIC_KEY` (PEM text) or the file named by `HERALD_JWT_RS256_PUBLIC_KEY_FILE`.
    pub public_key_pem: String,
    /// `HERALD_JWT_USER_CLAIM`: the claim holding the user id (default `sub`).
    pub user_claim: String,
    /// `HERALD_JWT_TENANT_CLAIM`: the claim holding the tenant id (default `tid`).
    pub tenant_claim: String,
    /// `HERALD_JWT_RS256_ISSUER`: required `iss`, when set.
    pub issuer: Option<String>,
    /// `HERALD_JWT_RS256_AUDIENCE`: required `aud`, when set.
    pub audience: Option<String>,
}

impl JwtConfig {
    pub fn read(env: &mut Env, environment: Environment) -> Self {
        let secret = match env.raw("HERALD_JWT_SECRET") {
            Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                env.error(
                    "HERALD_JWT_SECRET",
                    format!("must be at least {MIN_SECRET_BYTES} characters"),
                );
                secret
            }
            Some(secret) => secret,
            None if environment.is_development() => match dev_secret(Path::new(DEV_SECRET_FILE)) {
                Ok(secret) => secret,
                Err(error) => {
                    env.error(
                        "HERALD_JWT_SECRET",
                        format!("unset, and the development secret could not be kept in {DEV_SECRET_FILE}: {error}"),
                    );
                    String::new()
                }
            },
            None => {
                env.error(
                    "HERALD_JWT_SECRET",
                    format!("required when HERALD_ENV=production (at least {MIN_SECRET_BYTES} random characters)"),
                );
                String::new()
            }
        };
        let ttl_secs = env.parsed(
            "HERALD_JWT_TTL_SECS",
            43_200,
            "a positive number of seconds",
        );
        if ttl_secs == 0 {
            env.error("HERALD_JWT_TTL_SECS", "must be greater than zero");
        }
        let revocation_refresh_secs = env.parsed(
            "HERALD_JWT_REVOCATION_REFRESH_SECS",
            DEFAULT_REVOCATION_REFRESH_SECS,
            "a number of seconds",
        );
        if !(1..=MAX_REVOCATION_REFRESH_SECS).contains(&revocation_refresh_secs) {
            env.error(
                "HERALD_JWT_REVOCATION_REFRESH_SECS",
                format!("must be between 1 and {MAX_REVOCATION_REFRESH_SECS} seconds"),
            );
        }
        Self {
            secret: SecretString::from(secret),
            ttl_secs,
            issuer: env.string("HERALD_JWT_ISSUER", "herald"),
            external: ExternalJwtConfig::read(env),
            revocation_refresh_secs: revocation_refresh_secs.clamp(1, MAX_REVOCATION_REFRESH_SECS),
        }
    }
}

impl ExternalJwtConfig {
    fn read(env: &mut Env) -> Option<Self> {
        let pem = match (
            env.raw("HERALD_JWT_RS256_PUBLIC_KEY"),
            env.raw("HERALD_JWT_RS256_PUBLIC_KEY_FILE"),
        ) {
            (Some(pem), _) => pem,
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(pem) => pem,
                Err(error) => {
                    env.error(
                        "HERALD_JWT_RS256_PUBLIC_KEY_FILE",
                        format!("cannot read {path}: {error}"),
                    );
                    return None;
                }
            },
            (None, None) => return None,
        };
        if let Err(error) = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()) {
            env.error(
                "HERALD_JWT_RS256_PUBLIC_KEY",
                format!("not an RSA public key in PEM form: {error}"),
            );
        }
        Some(Self {
            public_key_pem: pem,
            user_claim: env.string("HERALD_JWT_USER_CLAIM", "sub"),
            tenant_claim: env.string("HERALD_JWT_TENANT_CLAIM", "tid"),
            issuer: env.raw("HERALD_JWT_RS256_ISSUER"),
            audience: env.raw("HERALD_JWT_RS256_AUDIENCE"),
        })
    }
}

/// Reads the development secret, creating it (and saying so, once) on first use.
fn dev_secret(path: &Path) -> std::io::Result<String> {
    if let Ok(secret) = std::fs::read_to_string(path) {
        let secret = secret.trim().to_owned();
        if secret.len() >= MIN_SECRET_BYTES {
            return Ok(secret);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, &secret)?;
    eprintln!(
        "herald: HERALD_JWT_SECRET is unset; generated a development secret in {} \
         (shared by every local process). Set HERALD_JWT_SECRET in production.",
        path.display()
    );
    Ok(secret)
}
