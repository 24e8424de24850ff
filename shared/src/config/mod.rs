//! Typed configuration read from environment variables (12-factor), `.env` honoured in development.
//!
//! Each process family builds only the sections it needs (the admin CLI needs no JWT secret),
//! and every section validates its values up front so a bad deployment fails at startup with a
//! message naming the variable, never later inside a request.

mod chat;
mod env;
mod hub;
mod jwt;
pub mod secrets;
mod worker;

pub use chat::{ChatConfig, DEFAULT_CHAT_MAX_MEMBERS};
pub use env::{ConfigError, Env};
pub use hub::{CorsOrigins, HubConfig};
pub use jwt::{ExternalJwtConfig, JwtConfig};
pub use worker::WorkerConfig;

use std::net::IpAddr;

/// `HERALD_ENV`: development relaxes secrets (generated locally) and migrates automatically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn read(env: &mut Env) -> Self {
        match env.string("HERALD_ENV", "development").as_str() {
            "development" | "dev" => Self::Development,
            "production" | "prod" => Self::Production,
            other => {
                env.error(
                    "HERALD_ENV",
                    format!("expected development or production, got {other:?}"),
                );
                Self::Development
            }
        }
    }

    pub fn is_development(self) -> bool {
        self == Self::Development
    }
}

/// PostgreSQL connection settings.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`.
    pub url: String,
    /// `HERALD_DB_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// `HERALD_AUTO_MIGRATE`: apply pending migrations at startup instead of refusing to start.
    pub auto_migrate: bool,
}

impl DatabaseConfig {
    pub fn read(env: &mut Env, environment: Environment) -> Self {
        let url = env.string("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/herald");
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            env.error("DATABASE_URL", "expected a postgres:// URL");
        }
        Self {
            url,
            max_connections: env.parsed(
                "HERALD_DB_MAX_CONNECTIONS",
                10,
                "a positive number of connections",
            ),
            auto_migrate: env.flag("HERALD_AUTO_MIGRATE", environment.is_development()),
        }
    }
}

/// Redis settings: job queues and pub/sub.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `REDIS_URL`.
    pub url: String,
    /// `HERALD_REDIS_PREFIX`: namespaces every key and channel, so several installs share a Redis.
    pub prefix: String,
}

impl RedisConfig {
    pub fn read(env: &mut Env) -> Self {
        let url = env.string("REDIS_URL", "redis://127.0.0.1:6379");
        if redis::parse_redis_url(&url).is_none() {
            env.error("REDIS_URL", "expected a redis:// or rediss:// URL");
        }
        let prefix = env.string("HERALD_REDIS_PREFIX", "herald");
        let prefix_ok = prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !prefix_ok {
            env.error(
                "HERALD_REDIS_PREFIX",
                "use only letters, digits, '_', '-' and '.' (it becomes part of every key)",
            );
        }
        Self { url, prefix }
    }
}

/// The HTTP listener.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// `HERALD_HOST`.
    pub host: IpAddr,
    /// `PORT`.
    pub port: u16,
    /// `HERALD_SHUTDOWN_TIMEOUT_SECS`: how long in-flight requests may take to finish on SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// `HERALD_HTTP_HEADER_TIMEOUT_SECS`: how long a client has to send a whole HTTP/1.1
    /// request head (slowloris protection); also how long a keep-alive connection may wait for
    /// its next request.
    pub header_timeout_secs: u64,
    /// `HERALD_HTTP_IDLE_TIMEOUT_SECS`: a connection (HTTP/1.1 or HTTP/2) on which nothing is
    /// read or written for this long is closed. Upgraded WebSockets are not affected.
    pub idle_timeout_secs: u64,
}

impl HttpConfig {
    pub fn read(env: &mut Env, default_port: u16) -> Self {
        Self {
            host: env.parsed(
                "HERALD_HOST",
                IpAddr::from([0, 0, 0, 0]),
                "an IP address to listen on",
            ),
            port: env.parsed("PORT", default_port, "a TCP port number (0-65535)"),
            shutdown_timeout_secs: env.parsed(
                "HERALD_SHUTDOWN_TIMEOUT_SECS",
                10,
                "a number of seconds",
            ),
            header_timeout_secs: positive_secs(env, "HERALD_HTTP_HEADER_TIMEOUT_SECS", 10),
            idle_timeout_secs: positive_secs(env, "HERALD_HTTP_IDLE_TIMEOUT_SECS", 60),
        }
    }
}

/// A timeout in whole seconds, at least 1 (0 would close every connection at once).
fn positive_secs(env: &mut Env, name: &str, default: u64) -> u64 {
    let secs = env.parsed(name, default, "a number of seconds (at least 1)");
    if secs == 0 {
        env.error(name, "must be at least 1 second");
        return default;
    }
    secs
}

/// Outgoing email settings shared by the API (test emails) and the email worker.
#[derive(Clone, Debug)]
pub struct EmailConfig {
    /// `SMTP_URL`, e.g. `smtp://127.0.0.1:1025`; unset in development writes `.eml` files instead.
    pub smtp_url: Option<String>,
    /// `HERALD_EMAIL_FROM`.
    pub from: String,
    /// `HERALD_TEST_EMAIL_TO`: where `POST /Notifications/test/send-email` sends, whatever the
    /// request says.
    pub test_recipient: String,
}

impl EmailConfig {
    pub fn read(env: &mut Env) -> Self {
        let smtp_url = env.raw("SMTP_URL");
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            env.error("SMTP_URL", "expected an smtp:// or smtps:// URL");
        }
        let from = env.string("HERALD_EMAIL_FROM", "Herald <noreply@herald.localhost>");
        if !from.contains('@') {
            env.error("HERALD_EMAIL_FROM", "expected an email address");
        }
        let test_recipient = env.string("HERALD_TEST_EMAIL_TO", "test@herald.localhost");
        if crate::domain::email::validate_email(&test_recipient).is_err() {
            env.error("HERALD_TEST_EMAIL_TO", "expected an email address");
        }
        Self {
            smtp_url,
            from,
            test_recipient,
        }
    }
}

/// `HERALD_LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl LogFormat {
    pub fn read(env: &mut Env) -> Self {
        match env.string("HERALD_LOG_FORMAT", "pretty").as_str() {
            "pretty" => Self::Pretty,
            "json" => Self::Json,
            other => {
                env.error(
                    "HERALD_LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                );
                Self::Pretty
            }
        }
    }
}

/// Everything `herald-api` and `herald-hub` need.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub environment: Environment,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub jwt: JwtConfig,
    pub email: EmailConfig,
    pub hub: HubConfig,
    pub chat: ChatConfig,
    pub log_format: LogFormat,
    /// `HERALD_SECRETS_KEY`: seals provider secrets.
    pub secrets: crate::secrets::SecretsKey,
}

/// `PORT` when unset: `herald-api` and `herald-hub` differ so both run on one machine.
pub const API_DEFAULT_PORT: u16 = 8080;
pub const HUB_DEFAULT_PORT: u16 = 8081;

impl ApiConfig {
    /// `herald-api`'s configuration.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Env::from_process())
    }

    /// `herald-hub`'s configuration: the same variables, another default port.
    pub fn hub_from_env() -> Result<Self, ConfigError> {
        Self::read_with_port(Env::from_process(), HUB_DEFAULT_PORT)
    }

    pub fn read(env: Env) -> Result<Self, ConfigError> {
        Self::read_with_port(env, API_DEFAULT_PORT)
    }

    fn read_with_port(mut env: Env, default_port: u16) -> Result<Self, ConfigError> {
        let environment = Environment::read(&mut env);
        let config = Self {
            environment,
            http: HttpConfig::read(&mut env, default_port),
            database: DatabaseConfig::read(&mut env, environment),
            redis: RedisConfig::read(&mut env),
            jwt: JwtConfig::read(&mut env, environment),
            email: EmailConfig::read(&mut env),
            hub: HubConfig::read(&mut env, environment),
            chat: ChatConfig::read(&mut env),
            log_format: LogFormat::read(&mut env),
            secrets: secrets::read(&mut env, environment),
        };
        env.finish(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ApiConfig::read(Env::from_map(map))
    }

    const SECRET: (&str, &str) = ("HERALD_JWT_SECRET", "0123456789abcdef0123456789abcdef");

    #[test]
    fn defaults_work_on_a_developer_machine() {
        let config = read(&[SECRET]).unwrap();
        assert_eq!(config.http.port, 8080);
        assert_eq!(config.redis.prefix, "herald");
        assert_eq!(config.jwt.ttl_secs, 43_200);
        assert_eq!(config.chat.max_members, DEFAULT_CHAT_MAX_MEMBERS);
        assert!(config.database.auto_migrate);
        assert_eq!(
            config.database.url,
            "postgres://postgres@127.0.0.1:5432/herald"
        );
    }

    #[test]
    fn production_requires_its_secrets_and_does_not_migrate_by_itself() {
        let error = read(&[("HERALD_ENV", "production")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("HERALD_JWT_SECRET: required"), "{error}");
        assert!(error.contains("HERALD_SECRETS_KEY: required"), "{error}");
        let key = (
            "HERALD_SECRETS_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        );
        let config = read(&[("HERALD_ENV", "production"), SECRET, key]).unwrap();
        assert!(!config.database.auto_migrate);
        let error = read(&[("HERALD_SECRETS_KEY", "c2hvcnQ="), SECRET]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("HERALD_SECRETS_KEY: expected 32 bytes")
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let error = read(&[
            SECRET,
            ("REDIS_URL", "http://nope"),
            ("HERALD_LOG_FORMAT", "xml"),
            ("HERALD_JWT_TTL_SECS", "-5"),
            ("HERALD_REDIS_PREFIX", "a b"),
        ])
        .unwrap_err()
        .to_string();
        for name in [
            "REDIS_URL",
            "HERALD_LOG_FORMAT",
            "HERALD_JWT_TTL_SECS",
            "HERALD_REDIS_PREFIX",
        ] {
            assert!(error.contains(name), "{name} missing from: {error}");
        }
    }
}
