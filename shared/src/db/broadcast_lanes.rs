//! Fan-out lanes: a broadcast's audience split at user-id boundaries, each range written by its
//! own chain of chunk jobs (see `migrations/…_broadcast_lanes.sql` and `herald_shared::db::fanout`).

use sqlx::PgConnection;

use crate::db::broadcasts::Broadcast;

/// One lane and how far it got.
#[derive(Debug, Clone)]
pub struct Lane {
    pub lane: i16,
    /// The last user id written (at first, the lane's exclusive lower bound).
    pub cursor: String,
    /// The lane's last user id (inclusive); `None` runs to the audience's end.
    pub upper_bound: Option<String>,
    pub done: bool,
}

/// Creates the lanes `bounds` (ascending user ids) delimit: lane 0 up to the first bound, the
/// next from there up to the second, …, the last to the end. One statement.
pub async fn create(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    bounds: &[String],
) -> sqlx::Result<Vec<Lane>> {
    let lowers: Vec<&str> = std::iter::once("")
        .chain(bounds.iter().map(String::as_str))
        .collect();
    let uppers: Vec<Option<&str>> = bounds
        .iter()
        .map(|b| Some(b.as_str()))
        .chain(std::iter::once(None))
        .collect();
    sqlx::query_as!(
        Lane,
        "INSERT INTO broadcast_lanes (tenant_id, broadcast_id, lane, cursor, upper_bound) \
         SELECT $1, $2, (n - 1)::smallint, l, u FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS x(l, u, n) \
         RETURNING lane, cursor, upper_bound, done",
        broadcast.tenant_id,
        broadcast.id,
        &lowers as &[&str],
        &uppers as &[Option<&str>],
    )
    .fetch_all(conn)
    .await
}

/// The lane, locked until the transaction ends: one chunk of a lane is written at a time.
pub async fn lock(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    lane: i16,
) -> sqlx::Result<Option<Lane>> {
    sqlx::query_as!(
        Lane,
        "SELECT lane, cursor, upper_bound, done FROM broadcast_lanes \
         WHERE tenant_id = $1 AND broadcast_id = $2 AND lane = $3 FOR UPDATE",
        broadcast.tenant_id,
        broadcast.id,
        lane,
    )
    .fetch_optional(conn)
    .await
}

/// Moves the lane's cursor past a written chunk; `done` when it was the lane's last.
pub async fn advance(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    lane: i16,
    cursor: &str,
    done: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE broadcast_lanes SET cursor = $4, done = $5 \
         WHERE tenant_id = $1 AND broadcast_id = $2 AND lane = $3",
        broadcast.tenant_id,
        broadcast.id,
        lane,
        cursor,
        done,
    )
    .execute(conn)
    .await?;
    Ok(())
}
