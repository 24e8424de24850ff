//! PostgreSQL access: the pool, migrations, and one module of queries per table or aggregate.

pub mod analytics;
pub mod api_keys;
pub mod broadcast_lanes;
pub mod broadcasts;
pub mod catch_up;
pub mod chat_broadcasts;
pub mod chat_messages;
pub mod chat_receipts;
pub mod chat_settings;
pub mod chats;
pub mod commit_window;
pub mod deliveries;
pub mod delivery;
pub mod fanout;
pub mod idempotency;
pub mod notifications;
pub mod providers;
pub mod recipients;
pub mod schedules;
pub mod sweep;
pub mod targets;
pub mod tenants;
pub mod topics;
pub mod users;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::config::DatabaseConfig;
use crate::redact::redact_url as redact;

/// Every migration in `migrations/`, embedded in each binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens the pool. Fails fast (5 s) with the server named, rather than hanging at startup.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = without_unsupported_secrets(&config.url)
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(&config.url)))
}

/// Creates the database when missing, then applies pending migrations (`herald-admin migrate`).
pub async fn create_and_migrate(config: &DatabaseConfig) -> anyhow::Result<()> {
    let url = without_unsupported_secrets(&config.url);
    let exists = Postgres::database_exists(&url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", redact(&config.url)))?;
    if !exists {
        Postgres::create_database(&url)
            .await
            .with_context(|| format!("cannot create database {}", redact(&config.url)))?;
        tracing::info!(database = %redact(&config.url), "created database");
    }
    let pool = connect(config).await?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations failed")?;
    pool.close().await;
    Ok(())
}

/// At API startup: migrate when allowed, otherwise refuse to run on an outdated schema.
pub async fn ensure_schema(pool: &PgPool, auto_migrate: bool) -> anyhow::Result<()> {
    if auto_migrate {
        return MIGRATOR
            .run(pool)
            .await
            .context("applying migrations failed");
    }
    let pending = pending_migrations(pool).await?;
    if !pending.is_empty() {
        bail!(
            "the database is not migrated ({} pending: {}). Run `herald-admin migrate`, \
             or set HERALD_AUTO_MIGRATE=true",
            pending.len(),
            pending.join(", ")
        );
    }
    Ok(())
}

/// Readiness: one round trip to the server.
pub async fn ping(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query_scalar!("SELECT 1 AS ping")
        .fetch_one(pool)
        .await?;
    Ok(())
}

async fn pending_migrations(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let table_exists =
        sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
            .fetch_one(pool)
            .await?;
    // Checked against the bookkeeping table `sqlx migrate run` creates in the database the
    // query data is prepared from, which is the table the migrator writes at run time.
    let applied: HashSet<i64> = if table_exists {
        sqlx::query_scalar!("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| format!("{}_{}", m.version, m.description.replace(' ', "_")))
        .collect())
}

/// libpq parameters sqlx does not support and that hold a secret. sqlx logs every parameter it
/// does not recognise *with its value*, so these are dropped (with a warning naming only the
/// key) before sqlx sees the URL.
const UNSUPPORTED_SECRET_PARAMS: &[&str] = &["sslpassword"];

fn without_unsupported_secrets(database_url: &str) -> String {
    let Ok(mut url) = url::Url::parse(database_url) else {
        return database_url.to_owned();
    };
    let is_unsupported = |key: &str| {
        UNSUPPORTED_SECRET_PARAMS
            .iter()
            .any(|s| key.eq_ignore_ascii_case(s))
    };
    if !url.query_pairs().any(|(key, _)| is_unsupported(&key)) {
        return database_url.to_owned();
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| {
            let unsupported = is_unsupported(key);
            if unsupported {
                tracing::warn!(parameter = %key, "DATABASE_URL parameter not supported; ignored");
            }
            !unsupported
        })
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_sqlx_would_log_are_dropped_before_it_parses_the_url() {
        assert_eq!(
            super::without_unsupported_secrets("postgres://h/db?sslpassword=k&sslmode=require"),
            "postgres://h/db?sslmode=require"
        );
        assert_eq!(
            super::without_unsupported_secrets("postgres://h/db?SSLPASSWORD=k"),
            "postgres://h/db"
        );
        assert_eq!(
            super::without_unsupported_secrets("postgres://u:p@h/db?sslmode=disable"),
            "postgres://u:p@h/db?sslmode=disable"
        );
    }
}
