//! Broadcast records: creation, progress, cancellation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::Priority;
use crate::domain::broadcast::{Audience, BroadcastStatus, NewBroadcast, Template};

/// `sqlx::query_as!` into [`Row`] with the row's columns spliced in, so they are written once
/// (the email counts among them): `broadcast_query!(SELECT "FROM broadcasts WHERE …", args…)`
/// or `broadcast_query!("UPDATE broadcasts … " RETURNING, args…)`.
macro_rules! broadcast_query {
    (SELECT $rest:literal $(, $arg:expr)* $(,)?) => {
        broadcast_query!(@columns ["SELECT " +] [+ " " + $rest $(, $arg)*])
    };
    ($statement:literal RETURNING $(, $arg:expr)* $(,)?) => {
        broadcast_query!(@columns [$statement + " RETURNING " +] [$(, $arg)*])
    };
    (@columns [$($before:tt)*] [$($after:tt)*]) => {
        sqlx::query_as!(Row, $($before)*
            r#"tenant_id, id, status, audience, topic_ids, subject, message, html_content,
               summary, type AS notification_type, priority,
               metadata AS "metadata: Json<BTreeMap<String, String>>", send_email, scheduled_for,
               total_recipients, delivered,
               (SELECT count(*) FILTER (WHERE state = 'Sent') FROM deliveries e
                  WHERE e.tenant_id = broadcasts.tenant_id AND e.broadcast_id = broadcasts.id
                    AND e.channel = 'email')::int AS "emailed!",
               (SELECT count(*) FILTER (WHERE state = 'Failed') FROM deliveries e
                  WHERE e.tenant_id = broadcasts.tenant_id AND e.broadcast_id = broadcasts.id
                    AND e.channel = 'email')::int AS "email_failed!",
               error_message, created_at, started_at, completed_at, updated_at"#
            $($after)*)
    };
}

/// A stored broadcast with its progress.
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub status: BroadcastStatus,
    pub audience: String,
    pub topic_ids: Vec<Uuid>,
    pub template: Template,
    pub send_email: bool,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub total_recipients: Option<i32>,
    pub delivered: i32,
    pub emailed: i32,
    pub email_failed: i32,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

struct Row {
    tenant_id: Uuid,
    id: Uuid,
    status: String,
    audience: String,
    topic_ids: Vec<Uuid>,
    subject: String,
    message: String,
    html_content: Option<String>,
    summary: Option<String>,
    notification_type: String,
    priority: i16,
    metadata: Json<BTreeMap<String, String>>,
    send_email: bool,
    scheduled_for: Option<DateTime<Utc>>,
    total_recipients: Option<i32>,
    delivered: i32,
    emailed: i32,
    email_failed: i32,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Broadcast {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, sqlx::Error> {
        let decode = |what: String| sqlx::Error::Decode(what.into());
        Ok(Self {
            tenant_id: row.tenant_id,
            id: row.id,
            status: BroadcastStatus::parse(&row.status)
                .ok_or_else(|| decode(format!("status {}", row.status)))?,
            audience: row.audience,
            topic_ids: row.topic_ids,
            template: Template {
                subject: row.subject,
                message: row.message,
                html_content: row.html_content,
                summary: row.summary,
                notification_type: row.notification_type.parse().map_err(decode)?,
                priority: Priority::from_rank(row.priority)
                    .ok_or_else(|| decode(format!("priority {}", row.priority)))?,
                metadata: row.metadata.0,
            },
            send_email: row.send_email,
            scheduled_for: row.scheduled_for,
            total_recipients: row.total_recipients,
            delivered: row.delivered,
            emailed: row.emailed,
            email_failed: row.email_failed,
            error_message: row.error_message,
            created_at: row.created_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            updated_at: row.updated_at,
        })
    }
}

/// Stores a broadcast and, for an explicit audience, its recipients (one statement).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewBroadcast,
) -> sqlx::Result<Broadcast> {
    let id = Uuid::now_v7();
    let status = if new.scheduled_for.is_some() {
        BroadcastStatus::Scheduled
    } else {
        BroadcastStatus::Queued
    };
    let topic_ids = match &new.audience {
        Audience::Topics(ids) => ids.clone(),
        _ => Vec::new(),
    };
    let t = &new.template;
    let row = broadcast_query!(
        "INSERT INTO broadcasts (tenant_id, id, status, audience, topic_ids, subject, message, html_content, \
         summary, type, priority, metadata, send_email, scheduled_for) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)" RETURNING,
        tenant_id,
        id,
        status.as_str(),
        new.audience.kind(),
        &topic_ids[..],
        t.subject,
        t.message,
        t.html_content,
        t.summary,
        t.notification_type.as_str(),
        t.priority.rank(),
        Json(&t.metadata) as _,
        new.send_email,
        new.scheduled_for,
    )
    .fetch_one(&mut *conn)
    .await?;
    if let Audience::Users(users) = &new.audience {
        let users: Vec<&str> = users.iter().map(|u| u.as_str()).collect();
        sqlx::query!(
            "INSERT INTO broadcast_recipients (tenant_id, broadcast_id, user_id) \
             SELECT $1, $2, u FROM unnest($3::text[]) AS u ON CONFLICT DO NOTHING",
            tenant_id,
            id,
            &users as &[&str],
        )
        .execute(conn)
        .await?;
    }
    row.try_into()
}

/// How `get` locks the broadcast row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowLock {
    None,
    /// What a fan-out chunk holds: chunks of different lanes run side by side (and still update
    /// the row's progress), while cancellation waits for them to commit.
    KeyShare,
    /// Cancellation and the start of a fan-out: waits for every chunk in flight.
    Update,
}

/// One broadcast, locked as `lock` says.
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    lock: RowLock,
) -> sqlx::Result<Option<Broadcast>> {
    let row = match lock {
        RowLock::None => {
            broadcast_query!(
                SELECT "FROM broadcasts WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                id,
            )
            .fetch_optional(conn)
            .await?
        }
        RowLock::KeyShare => {
            broadcast_query!(
                SELECT "FROM broadcasts WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE",
                tenant_id,
                id,
            )
            .fetch_optional(conn)
            .await?
        }
        RowLock::Update => {
            broadcast_query!(
                SELECT "FROM broadcasts WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                tenant_id,
                id,
            )
            .fetch_optional(conn)
            .await?
        }
    };
    row.map(Broadcast::try_from).transpose()
}

/// The tenant's broadcasts, newest first, keyset-paged by id.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Broadcast>> {
    // The keyset condition only when there is one: a generic plan keeps `$2 IS NULL OR id < $2`
    // as a filter, and each page would scan every newer broadcast again.
    let rows =
        match before {
            Some(before) => broadcast_query!(
                SELECT "FROM broadcasts WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                tenant_id,
                before,
                limit,
            )
            .fetch_all(conn)
            .await?,
            None => {
                broadcast_query!(
                    SELECT "FROM broadcasts WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
                    tenant_id,
                    limit,
                )
                .fetch_all(conn)
                .await?
            }
        };
    rows.into_iter().map(Broadcast::try_from).collect()
}

/// Topics among `ids` that do not exist in the tenant.
pub async fn unknown_topics(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT t AS "t!" FROM unnest($2::uuid[]) AS t
           WHERE NOT EXISTS (SELECT 1 FROM topics WHERE tenant_id = $1 AND id = t)"#,
        tenant_id,
        ids,
    )
    .fetch_all(conn)
    .await
}

/// Sets the status (and `completed_at` for final ones).
pub async fn set_status(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    status: BroadcastStatus,
    error: Option<&str>,
) -> sqlx::Result<Broadcast> {
    let row = broadcast_query!(
        "UPDATE broadcasts SET status = $3, error_message = coalesce($4, error_message), updated_at = now(), \
         completed_at = CASE WHEN $5 THEN now() ELSE completed_at END \
         WHERE tenant_id = $1 AND id = $2" RETURNING,
        tenant_id,
        id,
        status.as_str(),
        error,
        status.is_final(),
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}
