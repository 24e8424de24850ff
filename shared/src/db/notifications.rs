//! Queries on the notification inbox. Every query filters by tenant in SQL.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::channel::Channel;
use crate::domain::ids;
use crate::domain::{
    NewNotification, Notification, NotificationStatus, NotificationType, Priority,
};

/// `sqlx::query_as!` into [`Row`] with the row's column list spliced in, so the list is
/// written once: `notification_query!(SELECT "FROM notifications WHERE …", args…)` reads rows,
/// `notification_query!("UPDATE notifications … " RETURNING, args…)` returns them. The macros
/// need the whole statement as string literals, which is why this is a macro and not a `const`.
macro_rules! notification_query {
    (SELECT $rest:literal $(, $arg:expr)* $(,)?) => {
        $crate::db::notifications::notification_query!(@columns sqlx::query_as!
            [$crate::db::notifications::Row, "SELECT " +] [+ " " + $rest $(, $arg)*])
    };
    ($statement:literal RETURNING $(, $arg:expr)* $(,)?) => {
        $crate::db::notifications::notification_query!(@columns sqlx::query_as!
            [$crate::db::notifications::Row, $statement + " RETURNING " +] [$(, $arg)*])
    };
    // Calls `$then!` with the column list between `$before` and `$after`. `type` is a keyword
    // in Rust, hence the alias.
    (@columns $($then:ident)::+! [$($before:tt)*] [$($after:tt)*]) => {
        $($then)::+!($($before)*
            "tenant_id, id, user_id, client_id, subject, message, html_content, summary, \
             type AS notification_type, priority, status, created_at, scheduled_for, sent_at, \
             read_at, metadata, group_id, broadcast_id, email, retry_count, error_message, channels"
            $($after)*)
    };
}
pub(crate) use notification_query;

/// The same columns for the list, whose filters are put together at run time.
const COLUMNS: &str = notification_query!(@columns concat! [] []);

/// A notification as stored. `metadata` is read as JSON and checked in the conversion: the list
/// reads rows by name (`FromRow`), where a type override in the column list would rename the
/// column. Fields are visible to `db`'s modules because `notification_query!` builds the struct
/// where it is called.
#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    pub(super) tenant_id: Uuid,
    pub(super) id: Uuid,
    pub(super) user_id: String,
    pub(super) client_id: Option<String>,
    pub(super) subject: String,
    pub(super) message: String,
    pub(super) html_content: Option<String>,
    pub(super) summary: Option<String>,
    pub(super) notification_type: String,
    pub(super) priority: i16,
    pub(super) status: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) scheduled_for: Option<DateTime<Utc>>,
    pub(super) sent_at: Option<DateTime<Utc>>,
    pub(super) read_at: Option<DateTime<Utc>>,
    pub(super) metadata: serde_json::Value,
    pub(super) group_id: Option<Uuid>,
    pub(super) broadcast_id: Option<Uuid>,
    pub(super) email: Option<String>,
    pub(super) retry_count: i32,
    pub(super) error_message: Option<String>,
    pub(super) channels: Option<Vec<String>>,
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
            metadata: serde_json::from_value(row.metadata)
                .map_err(|e| decode(format!("metadata: {e}")))?,
            group_id: row.group_id,
            broadcast_id: row.broadcast_id,
            email: row.email,
            retry_count: row.retry_count,
            error_message: row.error_message,
            channels: row
                .channels
                .map(|names| names.iter().map(|name| name.parse()).collect())
                .transpose()
                .map_err(decode)?,
        })
    }
}

/// Channels as stored: their names, or NULL for the default.
pub(crate) fn channel_names(channels: Option<&[Channel]>) -> Option<Vec<&'static str>> {
    channels.map(|channels| channels.iter().map(|c| c.as_str()).collect())
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
    let row = notification_query!(
        "INSERT INTO notifications (tenant_id, id, user_id, client_id, subject, message, html_content, \
         summary, type, priority, status, created_at, scheduled_for, metadata, email, channels) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)" RETURNING,
        tenant_id,
        id,
        new.user_id.as_str(),
        new.client_id,
        new.subject,
        new.message,
        new.html_content,
        new.summary,
        new.notification_type.as_str(),
        new.priority.rank(),
        status.as_str(),
        created_at,
        new.scheduled_for,
        sqlx::types::Json(&new.metadata) as _,
        new.email,
        channel_names(new.channels.as_deref()) as _,
    )
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
    let row = if lock {
        notification_query!(
            SELECT "FROM notifications WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            tenant_id,
            id,
        )
        .fetch_optional(conn)
        .await?
    } else {
        notification_query!(
            SELECT "FROM notifications WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            id,
        )
        .fetch_optional(conn)
        .await?
    };
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
///
/// The one query of Herald built at run time (`QueryBuilder`), with its count: nine optional
/// filters and three orders in two directions are hundreds of statements, and folding them into
/// one (`$n IS NULL OR …`, an order chosen by `CASE`) would leave a generic plan that neither
/// narrows the index range nor reads it in order. Every value is still a bound parameter.
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
/// index `notifications_hidden_idx` holds exactly these rows (keep the two lists the same, and
/// the lists spelled out in the checked queries of this module and `analytics`).
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
    let row = if read {
        notification_query!(
            "UPDATE notifications SET status = 'Read', read_at = now() \
             WHERE tenant_id = $1 AND id = $2" RETURNING,
            tenant_id,
            id,
        )
        .fetch_one(conn)
        .await?
    } else {
        // Unread returns to where delivery left it: `Sent` once delivered, else still `Pending`.
        notification_query!(
            "UPDATE notifications \
             SET status = CASE WHEN sent_at IS NULL THEN 'Pending' ELSE 'Sent' END, read_at = NULL \
             WHERE tenant_id = $1 AND id = $2" RETURNING,
            tenant_id,
            id,
        )
        .fetch_one(conn)
        .await?
    };
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
    // No `before` bounds the ids by the largest UUID, above every UUIDv7: one statement, and
    // the bound is always part of the index range on (tenant_id, user_id, id).
    let below = before.map_or(Uuid::max(), ids::first_id_at_or_after);
    let rows = sqlx::query!(
        r#"UPDATE notifications SET status = 'Read', read_at = now()
           WHERE tenant_id = $1 AND user_id = $2 AND status <> 'Read'
             AND status NOT IN ('Scheduled', 'Cancelled') AND id < $3
           RETURNING id, read_at AS "read_at!""#,
        tenant_id,
        user_id,
        below,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.read_at)).collect())
}

/// Unread notifications a user can see: the badge count.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn unread_count(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM notifications WHERE tenant_id = $1 AND user_id = $2
           AND status NOT IN ('Read', 'Scheduled', 'Cancelled')"#,
        tenant_id,
        user_id,
    )
    .fetch_one(conn)
    .await
}

/// Deletes a notification and its schedule record.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, notification_id = %id))]
pub async fn delete(conn: &mut PgConnection, tenant_id: Uuid, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH gone AS (DELETE FROM notifications WHERE tenant_id = $1 AND id = $2 RETURNING id) \
         DELETE FROM schedules WHERE tenant_id = $1 AND kind = 'Notification' AND target_id IN (SELECT id FROM gone)",
        tenant_id,
        id,
    )
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
    let row = notification_query!(
        "UPDATE notifications SET status = 'Cancelled' WHERE tenant_id = $1 AND id = $2" RETURNING,
        tenant_id,
        id,
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}
