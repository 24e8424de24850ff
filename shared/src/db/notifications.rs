//! Queries on the notification inbox. Every query filters by tenant in SQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::ids;
use crate::domain::{
    NewNotification, Notification, NotificationStatus, NotificationType, Priority,
};

/// Columns in the order [`Row`] reads them.
pub(crate) const COLUMNS: &str = "tenant_id, id, user_id, client_id, subject, message, html_content, summary, \
     type, priority, status, created_at, scheduled_for, sent_at, read_at, metadata, group_id, \
     broadcast_id, email, retry_count, error_message";

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    tenant_id: Uuid,
    id: Uuid,
    user_id: String,
    client_id: Option<String>,
    subject: String,
    message: String,
    html_content: Option<String>,
    summary: Option<String>,
    #[sqlx(rename = "type")]
    notification_type: String,
    priority: i16,
    status: String,
    created_at: DateTime<Utc>,
    scheduled_for: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
    metadata: sqlx::types::Json<BTreeMap<String, String>>,
    group_id: Option<Uuid>,
    broadcast_id: Option<Uuid>,
    email: Option<String>,
    retry_count: i32,
    error_message: Option<String>,
}

impl TryFrom<Row> for Notification {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, sqlx::Error> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        Ok(Self {
            tenant_id: row.tenant_id,
            id: row.id,
            user_id: row.user_id,
            client_id: row.client_id,
            subject: row.subject,
            message: row.message,
            html_content: row.html_content,
            summary: row.summary,
            notification_type: row.notification_type.parse().map_err(decode)?,
            priority: Priority::from_rank(row.priority)
                .ok_or_else(|| decode(format!("priority {}", row.priority)))?,
            status: row.status.parse().map_err(decode)?,
            created_at: row.created_at,
            scheduled_for: row.scheduled_for,
            sent_at: row.sent_at,
            read_at: row.read_at,
            metadata: row.metadata.0,
            group_id: row.group_id,
            broadcast_id: row.broadcast_id,
            email: row.email,
            retry_count: row.retry_count,
            error_message: row.error_message,
        })
    }
}

pub(crate) fn into_notifications(rows: Vec<Row>) -> sqlx::Result<Vec<Notification>> {
    rows.into_iter().map(Notification::try_from).collect()
}

/// Stores a validated notification as `Pending`, or `Scheduled` when it has a future time.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewNotification,
) -> sqlx::Result<Notification> {
    let (id, created_at) = ids::new_id();
    let status = if new.scheduled_for.is_some() {
        NotificationStatus::Scheduled
    } else {
        NotificationStatus::Pending
    };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notifications (tenant_id, id, user_id, client_id, subject, message, html_content, \
         summary, type, priority, status, created_at, scheduled_for, metadata, email) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(id)
    .bind(new.user_id.as_str())
    .bind(&new.client_id)
    .bind(&new.subject)
    .bind(&new.message)
    .bind(&new.html_content)
    .bind(&new.summary)
    .bind(new.notification_type.as_str())
    .bind(new.priority.rank())
    .bind(status.as_str())
    .bind(created_at)
    .bind(new.scheduled_for)
    .bind(sqlx::types::Json(&new.metadata))
    .bind(&new.email)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// One notification of the tenant; `lock` takes a row lock for a following update.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %id))]
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<Notification>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE tenant_id = $1 AND id = $2{lock}"
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Notification::try_from).transpose()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortField {
    #[default]
    CreatedAt,
    Priority,
    Subject,
}

/// Which notifications a list shows, and in which order.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// One user's inbox; `None` lists the whole tenant (API-key callers).
    pub user_id: Option<String>,
    /// End users never see scheduled or cancelled notifications.
    pub hide_undelivered: bool,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub status: Option<NotificationStatus>,
    pub notification_type: Option<NotificationType>,
    pub priority: Option<Priority>,
    pub unread_only: bool,
    pub broadcast_id: Option<Uuid>,
    /// Text searched in subject and message (case-insensitive).
    pub text: Option<String>,
    pub sort: SortField,
    pub ascending: bool,
}

/// One page of a list and the total number of matching notifications.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    filter: &ListFilter,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Notification>, i64)> {
    let total = count(conn, tenant_id, filter).await?;

    let mut page = QueryBuilder::new(format!("SELECT {COLUMNS} FROM notifications"));
    push_filter(&mut page, tenant_id, filter);
    let direction = if filter.ascending { "ASC" } else { "DESC" };
    // `id` orders like `created_at` (UUIDv7) and breaks ties so pages never overlap.
    let order = match filter.sort {
        SortField::CreatedAt => format!(" ORDER BY id {direction}"),
        SortField::Priority => format!(" ORDER BY priority {direction}, id {direction}"),
        SortField::Subject => format!(" ORDER BY subject {direction}, id {direction}"),
    };
    page.push(order);
    page.push(" LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    let rows: Vec<Row> = page.build_query_as().fetch_all(conn).await?;
    Ok((into_notifications(rows)?, total))
}

/// How many notifications match. What a user may not see yet (scheduled or cancelled rows) is
/// few rows with a partial index of its own, so a user's total is every matching row minus
/// those: two index-only scans without a status test per row, where `status NOT IN (…)` over a
/// 100,000-row inbox made the count a third slower.
async fn count(conn: &mut PgConnection, tenant_id: Uuid, filter: &ListFilter) -> sqlx::Result<i64> {
    let mut query = QueryBuilder::new("SELECT (SELECT count(*) FROM notifications");
    push_conditions(&mut query, tenant_id, filter);
    query.push(")");
    if filter.hide_undelivered {
        query.push(" - (SELECT count(*) FROM notifications");
        push_conditions(&mut query, tenant_id, filter);
        query.push(format!(" AND status IN {HIDDEN_STATUSES})"));
    }
    query.build_query_scalar().fetch_one(conn).await
}

fn push_filter(query: &mut QueryBuilder<Postgres>, tenant_id: Uuid, filter: &ListFilter) {
    push_conditions(query, tenant_id, filter);
    if filter.hide_undelivered {
        push_visible(query);
    }
}

/// The filter's conditions but the user's visibility.
fn push_conditions(query: &mut QueryBuilder<Postgres>, tenant_id: Uuid, filter: &ListFilter) {
    query.push(" WHERE tenant_id = ").push_bind(tenant_id);
    if let Some(user_id) = &filter.user_id {
        query.push(" AND user_id = ").push_bind(user_id.clone());
    }
    if let Some(after) = filter.created_after {
        query
            .push(" AND id >= ")
            .push_bind(ids::first_id_after(after));
    }
    if let Some(before) = filter.created_before {
        query
            .push(" AND id < ")
            .push_bind(ids::first_id_at_or_after(before));
    }
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(kind) = filter.notification_type {
        query.push(" AND type = ").push_bind(kind.as_str());
    }
    if let Some(priority) = filter.priority {
        query.push(" AND priority = ").push_bind(priority.rank());
    }
    if filter.unread_only {
        query.push(" AND status <> 'Read'");
    }
    if let Some(broadcast_id) = filter.broadcast_id {
        query.push(" AND broadcast_id = ").push_bind(broadcast_id);
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", escape_like(text));
        query
            .push(" AND (subject ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR message ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
}

/// The statuses a user's own listing leaves out: not delivered yet, or never to be. The partial
/// index `notifications_hidden_idx` holds exactly these rows (keep the two lists the same).
const HIDDEN_STATUSES: &str = "('Scheduled', 'Cancelled')";

fn push_visible(query: &mut QueryBuilder<Postgres>) {
    query.push(format!(" AND status NOT IN {HIDDEN_STATUSES}"));
}

/// `%` and `_` in a search are literal characters, not wildcards.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Marks one notification read (`read = true`) or unread; returns it as updated.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %id))]
pub async fn set_read(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    read: bool,
) -> sqlx::Result<Notification> {
    // Unread returns to where delivery left it: `Sent` once delivered, else still `Pending`.
    let assignment = if read {
        "status = 'Read', read_at = now()"
    } else {
        "status = CASE WHEN sent_at IS NULL THEN 'Pending' ELSE 'Sent' END, read_at = NULL"
    };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE notifications SET {assignment} WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Marks every visible unread notification of a user read (optionally only those created
/// before `before`); returns the ids and read time of those that changed.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn read_all(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    before: Option<DateTime<Utc>>,
) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>)>> {
    let mut query = QueryBuilder::new(
        "UPDATE notifications SET status = 'Read', read_at = now() WHERE tenant_id = ",
    );
    query
        .push_bind(tenant_id)
        .push(" AND user_id = ")
        .push_bind(user_id.to_owned());
    query.push(" AND status <> 'Read'");
    push_visible(&mut query);
    if let Some(before) = before {
        query
            .push(" AND id < ")
            .push_bind(ids::first_id_at_or_after(before));
    }
    query.push(" RETURNING id, read_at");
    query.build_query_as().fetch_all(conn).await
}

/// Unread notifications a user can see: the badge count.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn unread_count(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE tenant_id = $1 AND user_id = $2 \
         AND status NOT IN ('Read', 'Scheduled', 'Cancelled')",
    )
    .bind(tenant_id)
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// Deletes a notification and its schedule record.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %id))]
pub async fn delete(conn: &mut PgConnection, tenant_id: Uuid, id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "WITH gone AS (DELETE FROM notifications WHERE tenant_id = $1 AND id = $2 RETURNING id) \
         DELETE FROM schedules WHERE tenant_id = $1 AND kind = 'Notification' AND target_id IN (SELECT id FROM gone)",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a scheduled notification `Cancelled`.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %id))]
pub async fn mark_cancelled(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Notification> {
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE notifications SET status = 'Cancelled' WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_one(conn)
    .await?;
    row.try_into()
}
