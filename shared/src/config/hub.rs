//! Settings of the SignalR hub, whether `herald-api` mounts it or `herald-hub` runs it alone.

use std::time::Duration;

use super::{Env, Environment};

/// Which browser origins may call `negotiate` from another origin (CORS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Every origin, each echoed back (never `*`: the SignalR client sends credentials).
    Any,
    /// Exactly these origins (`scheme://host[:port]`, lowercase); empty allows none.
    List(Vec<String>),
}

impl CorsOrigins {
    /// Whether a request's `Origin` header value is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(origins) => origins.contains(&normalize_origin(origin)),
        }
    }
}

/// `HTTPS://App.Example.com/` and `https://app.example.com` are the same origin.
fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[derive(Clone, Debug)]
pub struct HubConfig {
    /// `HERALD_HUB_CORS_ORIGINS`: comma-separated origins, or `*` for any.
    pub cors_origins: CorsOrigins,
    /// `HERALD_HUB_KEEPALIVE_SECS`: a ping goes to a client that was sent nothing for this long.
    pub keep_alive: Duration,
    /// `HERALD_HUB_CLIENT_TIMEOUT_SECS`: a client heard nothing from for this long is closed.
    pub client_timeout: Duration,
    /// `HERALD_HUB_HANDSHAKE_TIMEOUT_SECS`: time a new connection has to send its handshake.
    pub handshake_timeout: Duration,
    /// `HERALD_HUB_MAX_QUEUED_EVENTS`: events waiting for one slow client before it is
    /// disconnected, so a client that stops reading cannot make the node grow without bound.
    pub max_queued_events: usize,
    /// `HERALD_HUB_CREDENTIAL_SWEEP_SECS`: how often the node closes connections whose token
    /// expired or whose minting API key was revoked (1–30).
    pub credential_sweep: Duration,
    /// `HERALD_HUB_MAX_CONNECTIONS_PER_USER`: open connections one user may hold on a node;
    /// the next is refused, so one user (or a leaked token) cannot take a node's sockets.
    pub max_connections_per_user: usize,
}

/// The SignalR clients ping every 15 s and give up after 30 s of silence; the server mirrors
/// those defaults so neither side times the other out.
const DEFAULT_KEEP_ALIVE_SECS: u64 = 15;
const DEFAULT_CLIENT_TIMEOUT_SECS: u64 = 30;
const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 15;
const DEFAULT_MAX_QUEUED_EVENTS: usize = 256;
/// With the default revocation refresh (15 s) a revoked key's connections end within 20 s.
const DEFAULT_CREDENTIAL_SWEEP_SECS: u64 = 5;
const MAX_CREDENTIAL_SWEEP_SECS: u64 = 30;
const DEFAULT_MAX_CONNECTIONS_PER_USER: usize = 20;

impl HubConfig {
    pub fn read(env: &mut Env, environment: Environment) -> Self {
        let cors_origins = match env.raw("HERALD_HUB_CORS_ORIGINS") {
            None if environment.is_development() => CorsOrigins::Any,
            None => CorsOrigins::List(Vec::new()),
            Some(value) => parse_origins(env, &value),
        };
        let mut seconds = |name: &str, default: u64| {
            let secs: u64 = env.parsed(name, default, "a positive number of seconds");
            if secs == 0 {
                env.error(name, "must be at least 1 second");
            }
            Duration::from_secs(secs.max(1))
        };
        let keep_alive = seconds("HERALD_HUB_KEEPALIVE_SECS", DEFAULT_KEEP_ALIVE_SECS);
        let client_timeout = seconds(
            "HERALD_HUB_CLIENT_TIMEOUT_SECS",
            DEFAULT_CLIENT_TIMEOUT_SECS,
        );
        let handshake_timeout = seconds(
            "HERALD_HUB_HANDSHAKE_TIMEOUT_SECS",
            DEFAULT_HANDSHAKE_TIMEOUT_SECS,
        );
        let credential_sweep = seconds(
            "HERALD_HUB_CREDENTIAL_SWEEP_SECS",
            DEFAULT_CREDENTIAL_SWEEP_SECS,
        );
        if credential_sweep > Duration::from_secs(MAX_CREDENTIAL_SWEEP_SECS) {
            env.error(
                "HERALD_HUB_CREDENTIAL_SWEEP_SECS",
                format!("must be at most {MAX_CREDENTIAL_SWEEP_SECS} seconds"),
            );
        }
        let max_queued_events = env.parsed(
            "HERALD_HUB_MAX_QUEUED_EVENTS",
            DEFAULT_MAX_QUEUED_EVENTS,
            "a positive number of events",
        );
        if max_queued_events == 0 {
            env.error("HERALD_HUB_MAX_QUEUED_EVENTS", "must be at least 1");
        }
        let max_connections_per_user = env.parsed(
            "HERALD_HUB_MAX_CONNECTIONS_PER_USER",
            DEFAULT_MAX_CONNECTIONS_PER_USER,
            "a positive number of connections",
        );
        if max_connections_per_user == 0 {
            env.error("HERALD_HUB_MAX_CONNECTIONS_PER_USER", "must be at least 1");
        }
        Self {
            cors_origins,
            keep_alive,
            client_timeout,
            handshake_timeout,
            max_queued_events: max_queued_events.max(1),
            credential_sweep,
            max_connections_per_user: max_connections_per_user.max(1),
        }
    }
}

fn parse_origins(env: &mut Env, value: &str) -> CorsOrigins {
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if entries.contains(&"*") {
        return CorsOrigins::Any;
    }
    let mut origins = Vec::new();
    for entry in entries {
        let looks_like_origin = entry.split_once("://").is_some_and(|(scheme, host)| {
            !scheme.is_empty() && !host.trim_end_matches('/').contains('/') && !host.is_empty()
        });
        if looks_like_origin {
            origins.push(normalize_origin(entry));
        } else {
            env.error(
                "HERALD_HUB_CORS_ORIGINS",
                format!("{entry:?} is not an origin like https://app.example.com (or use *)"),
            );
        }
    }
    CorsOrigins::List(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)], environment: Environment) -> Result<HubConfig, String> {
        let mut env = Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let config = HubConfig::read(&mut env, environment);
        env.finish(config).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_signalr_protocol_timeouts() {
        let config = read(&[], Environment::Production).unwrap();
        assert_eq!(config.keep_alive, Duration::from_secs(15));
        assert_eq!(config.client_timeout, Duration::from_secs(30));
        assert_eq!(config.handshake_timeout, Duration::from_secs(15));
        assert_eq!(config.max_queued_events, 256);
        assert_eq!(config.credential_sweep, Duration::from_secs(5));
        assert_eq!(config.max_connections_per_user, 20);
        assert_eq!(config.cors_origins, CorsOrigins::List(Vec::new()));
    }

    #[test]
    fn development_allows_any_origin_unless_told_otherwise() {
        let config = read(&[], Environment::Development).unwrap();
        assert_eq!(config.cors_origins, CorsOrigins::Any);
        let config = read(
            &[("HERALD_HUB_CORS_ORIGINS", "https://app.example.com")],
            Environment::Development,
        )
        .unwrap();
        assert!(!config.cors_origins.allows("https://evil.example.com"));
    }

    #[test]
    fn listed_origins_match_without_regard_to_case_or_a_trailing_slash() {
        let config = read(
            &[(
                "HERALD_HUB_CORS_ORIGINS",
                "https://App.example.com/, http://localhost:3000",
            )],
            Environment::Production,
        )
        .unwrap();
        assert!(config.cors_origins.allows("https://app.example.com"));
        assert!(config.cors_origins.allows("http://localhost:3000"));
        assert!(!config.cors_origins.allows("http://localhost:3001"));
        let any = read(&[("HERALD_HUB_CORS_ORIGINS", "*")], Environment::Production).unwrap();
        assert_eq!(any.cors_origins, CorsOrigins::Any);
    }

    #[test]
    fn bad_hub_settings_name_their_variable() {
        let error = read(
            &[
                ("HERALD_HUB_CORS_ORIGINS", "app.example.com"),
                ("HERALD_HUB_KEEPALIVE_SECS", "0"),
                ("HERALD_HUB_CLIENT_TIMEOUT_SECS", "soon"),
                ("HERALD_HUB_MAX_QUEUED_EVENTS", "0"),
                ("HERALD_HUB_CREDENTIAL_SWEEP_SECS", "31"),
                ("HERALD_HUB_MAX_CONNECTIONS_PER_USER", "0"),
            ],
            Environment::Production,
        )
        .unwrap_err();
        for name in [
            "HERALD_HUB_CORS_ORIGINS",
            "HERALD_HUB_KEEPALIVE_SECS",
            "HERALD_HUB_CLIENT_TIMEOUT_SECS",
            "HERALD_HUB_MAX_QUEUED_EVENTS",
            "HERALD_HUB_CREDENTIAL_SWEEP_SECS",
            "HERALD_HUB_MAX_CONNECTIONS_PER_USER",
        ] {
            assert!(error.contains(name), "{name} missing from: {error}");
        }
    }
}
