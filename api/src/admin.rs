//! The commands of `herald-admin`. Output for people goes to stdout as plain lines; `--json`
//! prints exactly one JSON document so scripts can parse it.

use anyhow::{Context, bail};
use clap::Subcommand;
use herald_shared::auth::api_key;
use herald_shared::config::DatabaseConfig;
use herald_shared::db::{self, api_keys::ApiKeyRecord};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first API key (shown once).
    Create {
        /// A name for people (1–200 characters).
        name: String,
        /// Print `{"tenantId":"…","apiKey":"…"}` only.
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create another API key for a tenant (shown once).
    Create {
        #[arg(long)]
        tenant: Uuid,
        /// Print `{"tenantId":"…","keyId":"…","apiKey":"…"}` only.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's API keys (prefixes only).
    List {
        #[arg(long)]
        tenant: Uuid,
    },
    /// Revoke a key; requests with it are refused at once.
    Revoke {
        /// The key's id (from `apikey list`).
        key_id: Uuid,
    },
}

pub async fn migrate(config: &DatabaseConfig) -> anyhow::Result<()> {
    db::create_and_migrate(config).await?;
    println!(
        "database migrated ({})",
        herald_shared::redact::redact_url(&config.url)
    );
    Ok(())
}

pub async fn tenant(config: &DatabaseConfig, command: TenantCommand) -> anyhow::Result<()> {
    let pool = open(config).await?;
    match command {
        TenantCommand::Create { name, json } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                bail!("the tenant name must be 1–200 characters");
            }
            let key = api_key::generate();
            let mut tx = pool.begin().await?;
            let tenant = db::tenants::insert(&mut tx, name).await?;
            db::api_keys::insert(&mut tx, tenant.id, &key).await?;
            tx.commit().await?;
            if json {
                println!(
                    "{}",
                    json!({ "tenantId": tenant.id, "apiKey": key.plaintext })
                );
            } else {
                println!("tenant created: {} ({})", tenant.id, tenant.name);
                println!("API key (shown once, store it now): {}", key.plaintext);
            }
        }
        TenantCommand::List => {
            let mut conn = pool.acquire().await?;
            for tenant in db::tenants::list(&mut conn).await? {
                println!(
                    "{}  {}  {}",
                    tenant.id,
                    tenant.created_at.to_rfc3339(),
                    tenant.name
                );
            }
        }
    }
    Ok(())
}

pub async fn apikey(config: &DatabaseConfig, command: ApiKeyCommand) -> anyhow::Result<()> {
    let pool = open(config).await?;
    let mut conn = pool.acquire().await?;
    match command {
        ApiKeyCommand::Create { tenant, json } => {
            if !db::tenants::exists(&mut conn, tenant).await? {
                bail!("no tenant {tenant}");
            }
            let key = api_key::generate();
            let record = db::api_keys::insert(&mut conn, tenant, &key).await?;
            if json {
                println!(
                    "{}",
                    json!({ "tenantId": tenant, "keyId": record.id, "apiKey": key.plaintext })
                );
            } else {
                println!("API key {} created for tenant {tenant}", record.id);
                println!("API key (shown once, store it now): {}", key.plaintext);
            }
        }
        ApiKeyCommand::List { tenant } => {
            if !db::tenants::exists(&mut conn, tenant).await? {
                bail!("no tenant {tenant}");
            }
            for record in db::api_keys::list(&mut conn, tenant).await? {
                println!("{}", describe(&record));
            }
        }
        ApiKeyCommand::Revoke { key_id } => match db::api_keys::revoke(&mut conn, key_id).await? {
            Some(record) => println!("revoked: {}", describe(&record)),
            None => bail!("no API key {key_id}"),
        },
    }
    Ok(())
}

/// Opens the database and refuses to work on an unmigrated schema.
async fn open(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let pool = db::connect(config).await?;
    db::ensure_schema(&pool, false)
        .await
        .context("run `herald-admin migrate` first")?;
    Ok(pool)
}

fn describe(record: &ApiKeyRecord) -> String {
    let state = match record.revoked_at {
        Some(at) => format!("revoked {}", at.to_rfc3339()),
        None => "active".to_owned(),
    };
    let last_used = record.last_used_at.map_or_else(
        || "never used".to_owned(),
        |at| format!("last used {}", at.to_rfc3339()),
    );
    format!(
        "{}  {}…  created {}  {last_used}  {state}",
        record.id,
        record.prefix,
        record.created_at.to_rfc3339()
    )
}
