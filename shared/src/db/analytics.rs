//! Tenant-wide notification statistics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, QueryBuilder};
use uuid::Uuid;

use crate::db::notifications::{COLUMNS, Row, into_notifications};
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
    fn push(&self, query: &mut QueryBuilder<sqlx::Postgres>) {
        if let Some(from) = self.from {
            query
                .push(" AND id >= ")
                .push_bind(ids::first_id_at_or_after(from));
        }
        if let Some(to) = self.to {
            query.push(" AND id < ").push_bind(ids::first_id_after(to));
        }
    }
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    status: Option<String>,
    #[sqlx(rename = "type")]
    notification_type: Option<String>,
    priority: Option<i16>,
    count: i64,
    email_requested: i64,
    email_failed: i64,
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn notification_stats(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    period: Period,
) -> sqlx::Result<NotificationStats> {
    // One scan, every grouping: GROUPING SETS returns a row per status, per type, per priority
    // and the grand total (all three NULL).
    let mut query = QueryBuilder::new(
        "SELECT status, type, priority, count(*) AS count, \
         count(*) FILTER (WHERE email IS NOT NULL) AS email_requested, \
         count(*) FILTER (WHERE email IS NOT NULL AND status = 'Failed') AS email_failed \
         FROM notifications WHERE tenant_id = ",
    );
    query.push_bind(tenant_id);
    period.push(&mut query);
    query.push(" GROUP BY GROUPING SETS ((status), (type), (priority), ())");
    let rows: Vec<GroupRow> = query.build_query_as().fetch_all(conn).await?;
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
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE tenant_id = $1 AND status = 'Failed' ORDER BY id DESC LIMIT $2"
    )))
    .bind(tenant_id)
    .bind(limit)
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
    let mut query = QueryBuilder::new("SELECT count(*) FROM notifications WHERE tenant_id = ");
    query
        .push_bind(tenant_id)
        .push(" AND user_id = ")
        .push_bind(user_id.to_owned());
    if visible_only {
        query.push(" AND status NOT IN ('Scheduled', 'Cancelled')");
    }
    period.push(&mut query);
    query.build_query_scalar().fetch_one(conn).await
}
