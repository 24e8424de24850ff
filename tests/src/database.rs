//! One fresh, migrated database per test.
//!
//! Migrating every test database would cost more than the test; instead the migrations are
//! applied once to a template named after their checksums, and each test clones it with
//! `CREATE DATABASE … TEMPLATE`, which takes milliseconds.

use herald_shared::db::MIGRATOR;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::pg_admin_url;

/// Serialises template creation across parallel test processes.
const TEMPLATE_LOCK: i64 = 0x4845_5241_4c44; // "HERALD"

pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A migrated database of its own.
    pub async fn create() -> Self {
        let template = ensure_template().await;
        Self::create_from(Some(&template)).await
    }

    /// A database with no tables at all (to test refusing an unmigrated schema).
    pub async fn create_empty() -> Self {
        Self::create_from(None).await
    }

    async fn create_from(template: Option<&str>) -> Self {
        let name = format!("herald_test_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection().await;
        let template = template
            .map(|t| format!(" TEMPLATE {t}"))
            .unwrap_or_default();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name}{template}"
            )))
            .await
            .expect("create test database");
        Self {
            url: database_url(&name),
            name,
        }
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&pg_admin_url()).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = admin.execute(sqlx::AssertSqlSafe(sql)).await;
                    }
                });
            }
        })
        .join();
    }
}

async fn admin_connection() -> PgConnection {
    PgConnection::connect(&pg_admin_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {} ({e}); run the tests with scripts/test",
                pg_admin_url()
            )
        })
}

/// The URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let admin = pg_admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// Creates (once per set of migrations) and returns the template database's name.
async fn ensure_template() -> String {
    let mut hasher = Sha256::new();
    for migration in MIGRATOR.iter() {
        hasher.update(migration.version.to_le_bytes());
        hasher.update(&*migration.checksum);
    }
    let name = format!("herald_tpl_{}", &hex::encode(hasher.finalize())[..16]);
    let mut admin = admin_connection().await;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await
        .expect("template lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("look up template");
    if !exists {
        let building = format!("{name}_building");
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {building} WITH (FORCE)"
            )))
            .await
            .expect("drop stale template");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
            .await
            .expect("create template");
        let mut conn = PgConnection::connect(&database_url(&building))
            .await
            .expect("connect template");
        MIGRATOR.run(&mut conn).await.expect("migrate template");
        conn.close().await.expect("close template");
        // Renamed only when complete, so a crash never leaves a half-migrated template behind.
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {building} RENAME TO {name}"
            )))
            .await
            .expect("publish template");
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await
        .expect("template unlock");
    name
}
