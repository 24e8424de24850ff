//! Tenants: the organisations whose data Herald keeps apart.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all)]
pub async fn insert(conn: &mut PgConnection, name: &str) -> sqlx::Result<Tenant> {
    sqlx::query_as!(
        Tenant,
        "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, created_at",
        Uuid::now_v7(),
        name,
    )
    .fetch_one(conn)
    .await
}

#[tracing::instrument(skip_all)]
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<Tenant>> {
    sqlx::query_as!(
        Tenant,
        "SELECT id, name, created_at FROM tenants ORDER BY created_at, id"
    )
    .fetch_all(conn)
    .await
}

#[tracing::instrument(skip_all, fields(tenant_id = %id))]
pub async fn exists(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(conn)
    .await
}
