//! Schedule records: work due later, claimed by the scheduler.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::QueueAt;

/// What a schedule record triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleKind {
    Notification,
    Broadcast,
}

impl ScheduleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::Broadcast => "Broadcast",
        }
    }
}

impl TryFrom<String> for ScheduleKind {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.as_str() {
            "Notification" => Ok(Self::Notification),
            "Broadcast" => Ok(Self::Broadcast),
            _ => Err(format!("unknown schedule kind {text:?}")),
        }
    }
}

/// Records that `target_id` is due at `due_at`, to be queued as `queue` says; written in the
/// same transaction as the target. Work its creator queues starts `Queued`, so no scheduler
/// claims it as well.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, target_id = %target_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    kind: ScheduleKind,
    target_id: Uuid,
    due_at: DateTime<Utc>,
    queue: QueueAt,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO schedules (id, tenant_id, kind, target_id, due_at, state) VALUES ($1, $2, $3, $4, $5, $6)",
        Uuid::now_v7(),
        tenant_id,
        kind.as_str(),
        target_id,
        due_at,
        if queue.by_creator() { "Queued" } else { "Pending" },
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels the schedule of `target_id`, unless it already ran.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, target_id = %target_id))]
pub async fn cancel(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    kind: ScheduleKind,
    target_id: Uuid,
) -> sqlx::Result<()> {
    settle(conn, tenant_id, kind, target_id, "Cancelled").await
}

/// Marks the schedule of `target_id` done once its work has started, so the sweep's arm for
/// "queued but its job was lost" stops considering it.
pub async fn mark_done(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    kind: ScheduleKind,
    target_id: Uuid,
) -> sqlx::Result<()> {
    settle(conn, tenant_id, kind, target_id, "Done").await
}

/// Moves a schedule that has not run yet (`Pending` or `Queued`) to its final `state`.
async fn settle(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    kind: ScheduleKind,
    target_id: Uuid,
    state: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE schedules SET state = $4, updated_at = now() \
         WHERE tenant_id = $1 AND kind = $2 AND target_id = $3 AND state IN ('Pending', 'Queued')",
        tenant_id,
        kind.as_str(),
        target_id,
        state,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The state of the schedule of `target_id`, if it has one.
pub async fn state_of(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    kind: ScheduleKind,
    target_id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT state FROM schedules WHERE tenant_id = $1 AND kind = $2 AND target_id = $3",
        tenant_id,
        kind.as_str(),
        target_id,
    )
    .fetch_optional(conn)
    .await
}
