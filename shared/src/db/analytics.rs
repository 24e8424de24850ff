//! Tenant-wide notification statistics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::notifications::{into_notifications, notification_query};
use crate::domain::ids;
use crate::domain::{Notification, Priority};

/// Counts of notifications created in a period.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NotificationStats {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_type: BTreeMap<String, i64>,
    pub by_priority: BTreeMap<String, i64>,
    pub email_requested: i64,
    pub email_failed: i64,
}

/// A period of creation times, both ends inclusive and optional.
#[derive(Debug, Default, Clone, Copy)]
pub struct Period {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Period {
    /// The period as an id range `[from, to)`. An open end is the smallest or the largest UUID,
    /// beyond every UUIDv7, so each query is one statement whose bounds always take part in the
    /// index range (`tenant_id, id` or `tenant_id, user_id, id`).
    fn id_range(&self) -> (Uuid, Uuid) {
        (
            self.from.map_or(Uuid::nil(), ids::first_id_at_or_after),
            self.to.map_or(Uuid::max(), ids::first_id_after),
        )
    }
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn notification_stats(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    period: Period,
) -> sqlx::Result<NotificationStats> {
    // One scan, every grouping: GROUPING SETS returns a row per status, per type, per priority
    // and the grand total (all three NULL).
    let (from, to) = period.id_range();
    let rows = sqlx::query!(
        r#"SELECT status AS "status?", type AS "notification_type?", priority AS "priority?",
             count(*) AS "count!",
             count(*) FILTER (WHERE email IS NOT NULL) AS "email_requested!",
             count(*) FILTER (WHERE email IS NOT NULL AND status = 'Failed') AS "email_failed!"
           FROM notifications WHERE tenant_id = $1 AND id >= $2 AND id < $3
           GROUP BY GROUPING SETS ((status), (type), (priority), ())"#,
        tenant_id,
        from,
        to,
    )
    .fetch_all(conn)
    .await?;
    let mut stats = NotificationStats::default();
    for row in rows {
        match (row.status, row.notification_type, row.priority) {
            (Some(status), _, _) => {
                stats.by_status.insert(status, row.count);
            }
            (_, Some(kind), _) => {
                stats.by_type.insert(kind, row.count);
            }
            (_, _, Some(rank)) => {
                let name =
                    Priority::from_rank(rank).map_or_else(|| rank.to_string(), |p| p.to_string());
                stats.by_priority.insert(name, row.count);
            }
            (None, None, None) => {
                stats.total = row.count;
                stats.email_requested = row.email_requested;
                stats.email_failed = row.email_failed;
            }
        }
    }
    Ok(stats)
}

/// Failed notifications, newest first.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn failed(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    let rows = notification_query!(
        SELECT "FROM notifications WHERE tenant_id = $1 AND status = 'Failed' ORDER BY id DESC LIMIT $2",
        tenant_id,
        limit,
    )
    .fetch_all(conn)
    .await?;
    into_notifications(rows)
}

/// How many notifications a user received in a period (`visible_only` for the user's own view).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn user_count(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    period: Period,
    visible_only: bool,
) -> sqlx::Result<i64> {
    let (from, to) = period.id_range();
    if visible_only {
        sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM notifications
               WHERE tenant_id = $1 AND user_id = $2 AND status NOT IN ('Scheduled', 'Cancelled')
                 AND id >= $3 AND id < $4"#,
            tenant_id,
            user_id,
            from,
            to,
        )
        .fetch_one(conn)
        .await
    } else {
        sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM notifications
               WHERE tenant_id = $1 AND user_id = $2 AND id >= $3 AND id < $4"#,
            tenant_id,
            user_id,
            from,
            to,
        )
        .fetch_one(conn)
        .await
    }
}
