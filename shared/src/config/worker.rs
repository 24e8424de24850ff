//! Settings of the worker processes (`herald-fanout`, `herald-email`, `herald-scheduler`).

use std::path::PathBuf;

use super::{ConfigError, DatabaseConfig, EmailConfig, Env, Environment, LogFormat, RedisConfig};

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub environment: Environment,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub email: EmailConfig,
    pub log_format: LogFormat,
    /// `HERALD_SECRETS_KEY`: opens provider secrets.
    pub secrets: crate::secrets::SecretsKey,
    /// `PORT`: serve `/healthz` and `/readyz` here when set (Procfile runners set it).
    pub health_port: Option<u16>,
    /// `HERALD_WORKER_CONCURRENCY`: jobs one process runs at once.
    pub concurrency: usize,
    /// `HERALD_FANOUT_CHUNK_SIZE`: recipients per fan-out job (one insert statement each).
    pub fanout_chunk_size: i64,
    /// `HERALD_FANOUT_LANES`: how many ranges of a large audience are fanned out side by side
    /// (each chunk still one insert; a lane is never shorter than a chunk).
    pub fanout_lanes: i64,
    /// `HERALD_EMAIL_MAX_ATTEMPTS`: attempts before an email fails for good.
    pub email_max_attempts: i32,
    /// `HERALD_EMAIL_BACKOFF_BASE_MS`: delay before the second attempt; doubles after each.
    pub email_backoff_base_ms: u64,
    /// `HERALD_EMAIL_DIR`: where `.eml` files go in development when `SMTP_URL` is unset.
    pub email_dir: PathBuf,
    /// `HERALD_SCHEDULER_CRON`: when the scheduler ticks (six fields, seconds first).
    pub scheduler_cron: String,
    /// `HERALD_SWEEP_AFTER_SECS`: accepted work with no progress for this long is queued again.
    pub sweep_after_secs: u64,
    /// `HERALD_EMAIL_LEASE_SECS`: a claimed email whose SMTP exchange has not reached `DATA`
    /// this long after the claim is taken back by the sweep and sent again.
    pub email_lease_secs: u64,
}

impl WorkerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Env::from_process())
    }

    pub fn read(mut env: Env) -> Result<Self, ConfigError> {
        let environment = Environment::read(&mut env);
        let concurrency: usize =
            env.parsed("HERALD_WORKER_CONCURRENCY", 8, "a number of jobs (1-1024)");
        if !(1..=1024).contains(&concurrency) {
            env.error("HERALD_WORKER_CONCURRENCY", "must be between 1 and 1024");
        }
        let fanout_chunk_size: i64 =
            env.parsed("HERALD_FANOUT_CHUNK_SIZE", 10_000, "a number of recipients");
        if !(1..=50_000).contains(&fanout_chunk_size) {
            env.error("HERALD_FANOUT_CHUNK_SIZE", "must be between 1 and 50000");
        }
        let fanout_lanes: i64 = env.parsed("HERALD_FANOUT_LANES", 4, "a number of lanes (1-64)");
        if !(1..=64).contains(&fanout_lanes) {
            env.error("HERALD_FANOUT_LANES", "must be between 1 and 64");
        }
        let email_max_attempts: i32 = env.parsed(
            "HERALD_EMAIL_MAX_ATTEMPTS",
            5,
            "a number of attempts (1-25)",
        );
        if !(1..=25).contains(&email_max_attempts) {
            // apalis-redis re-runs failed jobs up to 25 times on its own; stay below.
            env.error("HERALD_EMAIL_MAX_ATTEMPTS", "must be between 1 and 25");
        }
        let scheduler_cron = env.string("HERALD_SCHEDULER_CRON", "0 * * * * *");
        if scheduler_cron.parse::<cron::Schedule>().is_err() {
            env.error(
                "HERALD_SCHEDULER_CRON",
                "expected a cron expression with a seconds field, e.g. \"0 * * * * *\"",
            );
        }
        // Two minutes: well past the longest a live worker takes to reach DATA (the 20 s SMTP
        // timeout, plus its claim), so only dead claims are taken back. Shorter is still never
        // a second send, only a slow live send interrupted needlessly.
        let email_lease_secs: u64 =
            env.parsed("HERALD_EMAIL_LEASE_SECS", 120, "a number of seconds");
        if email_lease_secs == 0 {
            env.error("HERALD_EMAIL_LEASE_SECS", "must be at least 1");
        }
        let config = Self {
            environment,
            database: DatabaseConfig::read(&mut env, environment),
            redis: RedisConfig::read(&mut env),
            email: EmailConfig::read(&mut env),
            log_format: LogFormat::read(&mut env),
            secrets: super::secrets::read(&mut env, environment),
            health_port: env.optional("PORT", "a TCP port number (0-65535)"),
            concurrency,
            fanout_chunk_size,
            fanout_lanes,
            email_max_attempts,
            email_backoff_base_ms: env.parsed(
                "HERALD_EMAIL_BACKOFF_BASE_MS",
                2_000,
                "a number of milliseconds",
            ),
            email_dir: PathBuf::from(env.string("HERALD_EMAIL_DIR", ".herald/emails")),
            scheduler_cron,
            sweep_after_secs: env.parsed("HERALD_SWEEP_AFTER_SECS", 30, "a number of seconds"),
            email_lease_secs,
        };
        env.finish(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<WorkerConfig, ConfigError> {
        WorkerConfig::read(Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ))
    }

    #[test]
    fn defaults_follow_the_issue() {
        let config = read(&[]).unwrap();
        assert_eq!(
            (config.email_max_attempts, config.email_backoff_base_ms),
            (5, 2_000)
        );
        assert_eq!(config.health_port, None);
        assert_eq!(config.scheduler_cron, "0 * * * * *");
        assert_eq!(config.email_lease_secs, 120);
    }

    #[test]
    fn bad_worker_settings_name_their_variable() {
        let error = read(&[
            ("HERALD_WORKER_CONCURRENCY", "0"),
            ("HERALD_SCHEDULER_CRON", "* * * * *"),
            ("HERALD_EMAIL_MAX_ATTEMPTS", "99"),
            ("HERALD_EMAIL_LEASE_SECS", "0"),
        ])
        .unwrap_err()
        .to_string();
        for name in [
            "HERALD_WORKER_CONCURRENCY",
            "HERALD_SCHEDULER_CRON",
            "HERALD_EMAIL_MAX_ATTEMPTS",
            "HERALD_EMAIL_LEASE_SECS",
        ] {
            assert!(error.contains(name), "{name}: {error}");
        }
    }
}
