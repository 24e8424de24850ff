//! Queries on recipient profiles. Every query filters by tenant in SQL.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{NewRecipient, NotificationType, Preferences, Recipient};

struct Row {
    user_id: String,
    email: Option<String>,
    display_name: Option<String>,
    locale: Option<String>,
    email_enabled: bool,
    email_opt_out: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Recipient {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, sqlx::Error> {
        let email_opt_out = row
            .email_opt_out
            .iter()
            .map(|kind| kind.parse::<NotificationType>())
            .collect::<Result<_, _>>()
            .map_err(|e| sqlx::Error::Decode(e.into()))?;
        Ok(Self {
            user_id: row.user_id,
            email: row.email,
            display_name: row.display_name,
            locale: row.locale,
            preferences: Preferences {
                email_enabled: row.email_enabled,
                email_opt_out,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Whether an upsert created the profile or replaced an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// Stores the profile, replacing any existing one in the same statement (no read-then-write
/// race between concurrent PUTs). `updated_at` moves only when something actually changed, so a
/// repeated PUT leaves the profile exactly as it was.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn upsert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewRecipient,
) -> sqlx::Result<(Recipient, Upserted)> {
    let opt_out: Vec<&str> = new
        .preferences
        .email_opt_out
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    // `xmax = 0` holds only for a freshly inserted row version: an updated row carries the
    // updating transaction's id there.
    let upserted = sqlx::query!(
        r#"INSERT INTO recipients AS r (tenant_id, user_id, email, display_name, locale,
             email_enabled, email_opt_out) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = EXCLUDED.email,
             display_name = EXCLUDED.display_name, locale = EXCLUDED.locale,
             email_enabled = EXCLUDED.email_enabled, email_opt_out = EXCLUDED.email_opt_out,
             updated_at = CASE WHEN (r.email, r.display_name, r.locale, r.email_enabled, r.email_opt_out)
                 IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.display_name, EXCLUDED.locale,
                 EXCLUDED.email_enabled, EXCLUDED.email_opt_out) THEN now() ELSE r.updated_at END
           RETURNING (xmax = 0) AS "created!", user_id, email, display_name, locale, email_enabled,
             email_opt_out, created_at, updated_at"#,
        tenant_id,
        new.user_id.as_str(),
        new.email.as_deref(),
        new.display_name.as_deref(),
        new.locale.as_deref(),
        new.preferences.email_enabled,
        &opt_out as &[&str],
    )
    .fetch_one(conn)
    .await?;
    let outcome = if upserted.created {
        Upserted::Created
    } else {
        Upserted::Updated
    };
    let row = Row {
        user_id: upserted.user_id,
        email: upserted.email,
        display_name: upserted.display_name,
        locale: upserted.locale,
        email_enabled: upserted.email_enabled,
        email_opt_out: upserted.email_opt_out,
        created_at: upserted.created_at,
        updated_at: upserted.updated_at,
    };
    Ok((row.try_into()?, outcome))
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<Option<Recipient>> {
    let row = sqlx::query_as!(
        Row,
        "SELECT user_id, email, display_name, locale, email_enabled, email_opt_out, \
         created_at, updated_at FROM recipients WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
    )
    .fetch_optional(conn)
    .await?;
    row.map(Recipient::try_from).transpose()
}

/// Removes the profile; `false` when there was none.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn delete(conn: &mut PgConnection, tenant_id: Uuid, user_id: &str) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM recipients WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}

/// Up to `limit` profiles in user id order, starting after `after` (keyset paging on the
/// primary key: every page costs the same, however deep). No `after` binds `''`, which sorts
/// before every user id (ids are never empty), so one statement serves the first page too and
/// its plan is always an index range scan.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<Recipient>> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT user_id, email, display_name, locale, email_enabled, email_opt_out, \
         created_at, updated_at FROM recipients WHERE tenant_id = $1 AND user_id > $2 \
         ORDER BY user_id LIMIT $3",
        tenant_id,
        after.unwrap_or_default(),
        limit,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Recipient::try_from).collect()
}
