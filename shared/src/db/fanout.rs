//! Broadcast fan-out: resolving recipients by keyset and writing their inbox rows in bulk.
//!
//! A broadcast starts by splitting its audience into lanes (`db::broadcast_lanes`): ranges of
//! user ids fanned out side by side. Each chunk of a lane is one transaction: the lane row is
//! locked, the next recipients after its cursor are resolved, their notifications are inserted
//! in ONE statement (the `(tenant_id, broadcast_id, user_id)` unique index makes a second row
//! impossible) and the cursor advances. A job that runs twice finds the cursor moved and does
//! nothing; a worker killed mid-chunk rolls back and the chunk is redone whole.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection};
use uuid::Uuid;

use crate::db::broadcasts::Broadcast;
use crate::domain::ids;

/// A recipient of the chunk, with the address to email (when email is wanted and allowed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChunkRecipient {
    pub user_id: String,
    pub email: Option<String>,
}

/// An inbox row written by this chunk (rows that already existed are not returned).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivered {
    pub id: Uuid,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The email column of the recipient query: the profile's address when the broadcast emails,
/// the recipient accepts email, and has not opted out of this type.
const EMAIL: &str = "CASE WHEN $3 AND r.email IS NOT NULL AND r.email_enabled AND NOT ($4 = ANY (r.email_opt_out)) \
     THEN r.email END AS email";

/// The next `limit` recipients after `cursor`, up to `upper_bound` (user ids in order).
#[tracing::instrument(skip_all, fields(broadcast_id = %broadcast.id))]
pub async fn next_chunk(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    cursor: &str,
    upper_bound: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<ChunkRecipient>> {
    // The bound is spelled out only when there is one: a generic plan would not simplify
    // `$8 IS NULL OR …`, and the scan of a lane's last chunk would run on past its end.
    let upper = if upper_bound.is_some() {
        " AND user_id <= $8"
    } else {
        " AND $8::text IS NULL"
    };
    let sql = match broadcast.audience.as_str() {
        // Every profile: the email columns are right there, no join needed.
        "AllUsers" => format!(
            "SELECT r.user_id, {EMAIL} FROM recipients r WHERE r.tenant_id = $1 AND $2::uuid IS NOT NULL \
             AND r.user_id > $5{upper} ORDER BY r.user_id LIMIT $6"
        ),
        audience => {
            let ids = if audience == "Users" {
                format!(
                    "SELECT user_id FROM broadcast_recipients WHERE tenant_id = $1 AND broadcast_id = $2 \
                     AND user_id > $5{upper} ORDER BY user_id LIMIT $6"
                )
            } else {
                format!(
                    "SELECT DISTINCT user_id FROM topic_subscriptions WHERE tenant_id = $1 \
                     AND topic_id = ANY ($7) AND user_id > $5{upper} ORDER BY user_id LIMIT $6"
                )
            };
            format!(
                "SELECT a.user_id, {EMAIL} FROM ({ids}) AS a \
                 LEFT JOIN recipients r ON r.tenant_id = $1 AND r.user_id = a.user_id ORDER BY a.user_id"
            )
        }
    };
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(broadcast.tenant_id)
        .bind(broadcast.id)
        .bind(broadcast.send_email)
        .bind(broadcast.template.notification_type.as_str())
        .bind(cursor)
        .bind(limit)
        .bind(&broadcast.topic_ids)
        .bind(upper_bound)
        .fetch_all(conn)
        .await
}

/// The audience's user ids, unordered ($1 tenant, $2 broadcast, $3 topic ids).
fn audience_ids(audience: &str) -> &'static str {
    match audience {
        "Users" => {
            "SELECT user_id FROM broadcast_recipients WHERE tenant_id = $1 AND broadcast_id = $2 \
             AND $3::uuid[] IS NOT NULL"
        }
        "Topics" => {
            "SELECT DISTINCT user_id FROM topic_subscriptions WHERE tenant_id = $1 \
             AND topic_id = ANY ($3) AND $2::uuid IS NOT NULL"
        }
        _ => {
            "SELECT user_id FROM recipients WHERE tenant_id = $1 AND $2::uuid IS NOT NULL \
             AND $3::uuid[] IS NOT NULL"
        }
    }
}

/// How many recipients the audience has now (progress reporting).
pub async fn audience_size(conn: &mut PgConnection, broadcast: &Broadcast) -> sqlx::Result<i64> {
    let ids = audience_ids(&broadcast.audience);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM ({ids}) AS a"
    )))
    .bind(broadcast.tenant_id)
    .bind(broadcast.id)
    .bind(&broadcast.topic_ids)
    .fetch_one(conn)
    .await
}

/// The user ids that split an audience of `total` into `lanes` ranges of equal size: every
/// `total / lanes`-th id in order (one scan of the audience, like counting it).
pub async fn lane_bounds(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    total: i64,
    lanes: i64,
) -> sqlx::Result<Vec<String>> {
    if lanes <= 1 || total <= 1 {
        return Ok(Vec::new());
    }
    let ids = audience_ids(&broadcast.audience);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT user_id FROM (SELECT user_id, row_number() OVER (ORDER BY user_id) AS n FROM ({ids}) AS a) AS o \
         WHERE n % $4 = 0 ORDER BY user_id LIMIT $5"
    )))
    .bind(broadcast.tenant_id)
    .bind(broadcast.id)
    .bind(&broadcast.topic_ids)
    .bind((total + lanes - 1) / lanes)
    .bind(lanes - 1)
    .fetch_all(conn)
    .await
}

/// Marks the broadcast as fanning out, recording the audience size once.
pub async fn start(conn: &mut PgConnection, broadcast: &Broadcast, total: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE broadcasts SET status = 'FanningOut', started_at = coalesce(started_at, now()), \
         total_recipients = coalesce(total_recipients, $3), updated_at = now() \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(broadcast.tenant_id)
    .bind(broadcast.id)
    .bind(i32::try_from(total).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the chunk's inbox rows (already `Sent`: the inbox is the delivery) in one statement,
/// and their email deliveries in another. Returns the rows this call created.
///
/// Under the lane's lock the recipients past its cursor normally hold no row of this
/// broadcast yet, so the rows go in with a plain INSERT: `ON CONFLICT` would cost a speculative
/// insertion and an extra probe of the unique index per row (a quarter of the chunk's time), and
/// every row is known without `RETURNING`. Only when the chunk's range already holds one (a user
/// who received it was renamed onto an id past the cursor) does the chunk skip existing rows.
/// The unique index still decides: a row that slips in between the check and the insert fails
/// the chunk, whose retry then takes the careful path.
#[tracing::instrument(skip_all, fields(broadcast_id = %broadcast.id, recipients = recipients.len()))]
pub async fn insert_chunk(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    cursor: &str,
    recipients: &[ChunkRecipient],
) -> sqlx::Result<Vec<Delivered>> {
    let Some(last) = recipients.last() else {
        return Ok(Vec::new());
    };
    let rows: Vec<Delivered> = recipients
        .iter()
        .map(|r| {
            let (id, created_at) = ids::new_id();
            Delivered {
                id,
                user_id: r.user_id.clone(),
                email: r.email.clone(),
                created_at,
            }
        })
        .collect();
    let some_exist: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM notifications WHERE tenant_id = $1 AND broadcast_id = $2 \
         AND user_id > $3 AND user_id <= $4)",
    )
    .bind(broadcast.tenant_id)
    .bind(broadcast.id)
    .bind(cursor)
    .bind(&last.user_id)
    .fetch_one(&mut *conn)
    .await?;
    let delivered = insert_rows(conn, broadcast, rows, some_exist).await?;

    let (email_ids, addresses): (Vec<Uuid>, Vec<&str>) = delivered
        .iter()
        .filter_map(|d| d.email.as_deref().map(|email| (d.id, email)))
        .unzip();
    if !email_ids.is_empty() {
        sqlx::query(
            "INSERT INTO email_deliveries (tenant_id, notification_id, broadcast_id, email) \
             SELECT $1, n, $2, e FROM unnest($3::uuid[], $4::text[]) AS x(n, e) ON CONFLICT DO NOTHING",
        )
        .bind(broadcast.tenant_id)
        .bind(broadcast.id)
        .bind(&email_ids)
        .bind(&addresses)
        .execute(conn)
        .await?;
    }
    Ok(delivered)
}

const INSERT_ROWS: &str = "INSERT INTO notifications (tenant_id, id, user_id, subject, message, html_content, \
         summary, type, priority, status, created_at, sent_at, metadata, broadcast_id, email) \
     SELECT $1, u.id, u.user_id, $2, $3, $4, $5, $6, $7, 'Sent', u.created_at, now(), $8, $9, u.email \
     FROM unnest($10::uuid[], $11::text[], $12::timestamptz[], $13::text[]) AS u(id, user_id, created_at, email)";

/// The one INSERT of a chunk; returns the rows it created.
async fn insert_rows(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    rows: Vec<Delivered>,
    skip_existing: bool,
) -> sqlx::Result<Vec<Delivered>> {
    let arguments = row_arguments(broadcast, &rows).map_err(sqlx::Error::Encode)?;
    if skip_existing {
        let sql = format!(
            "{INSERT_ROWS} ON CONFLICT (tenant_id, broadcast_id, user_id) WHERE broadcast_id IS NOT NULL \
             DO NOTHING RETURNING id, user_id, email, created_at"
        );
        return sqlx::query_as_with(sqlx::AssertSqlSafe(sql), arguments)
            .fetch_all(conn)
            .await;
    }
    sqlx::query_with(INSERT_ROWS, arguments)
        .execute(conn)
        .await?;
    Ok(rows)
}

/// The parameters of `INSERT_ROWS`: the template once, the rows as column arrays.
fn row_arguments(broadcast: &Broadcast, rows: &[Delivered]) -> Result<PgArguments, BoxDynError> {
    let t = &broadcast.template;
    let mut arguments = PgArguments::default();
    arguments.add(broadcast.tenant_id)?;
    arguments.add(&t.subject)?;
    arguments.add(&t.message)?;
    arguments.add(&t.html_content)?;
    arguments.add(&t.summary)?;
    arguments.add(t.notification_type.as_str())?;
    arguments.add(t.priority.rank())?;
    arguments.add(sqlx::types::Json(&t.metadata))?;
    arguments.add(broadcast.id)?;
    arguments.add(rows.iter().map(|r| r.id).collect::<Vec<_>>())?;
    arguments.add(rows.iter().map(|r| r.user_id.as_str()).collect::<Vec<_>>())?;
    arguments.add(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())?;
    arguments.add(rows.iter().map(|r| r.email.as_deref()).collect::<Vec<_>>())?;
    Ok(arguments)
}

/// Adds a chunk's rows to the broadcast's progress; after a lane's last chunk, completes the
/// broadcast if no lane is left.
///
/// Lanes finishing at the same moment cannot both miss each other: each first updates the
/// broadcast row, which waits for the other's commit, and only then looks at the lanes in a new
/// statement, which sees that commit.
pub async fn record_progress(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    written: usize,
    lane_done: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE broadcasts SET delivered = delivered + $3, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(broadcast.tenant_id)
    .bind(broadcast.id)
    .bind(i32::try_from(written).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    if lane_done {
        sqlx::query(
            "UPDATE broadcasts SET status = 'Completed', completed_at = now() \
             WHERE tenant_id = $1 AND id = $2 AND status = 'FanningOut' AND NOT EXISTS ( \
                 SELECT FROM broadcast_lanes WHERE tenant_id = $1 AND broadcast_id = $2 AND NOT done)",
        )
        .bind(broadcast.tenant_id)
        .bind(broadcast.id)
        .execute(conn)
        .await?;
    }
    Ok(())
}
