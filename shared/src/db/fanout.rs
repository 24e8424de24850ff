//! Broadcast fan-out: resolving recipients by keyset and writing their inbox rows in bulk.
//!
//! A broadcast starts by splitting its audience into lanes (`db::broadcast_lanes`): ranges of
//! user ids fanned out side by side. Each chunk of a lane is one transaction: the lane row is
//! locked, the next recipients after its cursor are resolved, their notifications are inserted
//! in ONE statement (the `(tenant_id, broadcast_id, user_id)` unique index makes a second row
//! impossible) and the cursor advances. A job that runs twice finds the cursor moved and does
//! nothing; a worker killed mid-chunk rolls back and the chunk is redone whole.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::broadcasts::Broadcast;
use crate::domain::ids;

/// A recipient of the chunk, with the address to email (when email is wanted and allowed).
#[derive(Debug, Clone)]
pub struct ChunkRecipient {
    pub user_id: String,
    pub email: Option<String>,
}

/// An inbox row written by this chunk (rows that already existed are not returned).
#[derive(Debug, Clone)]
pub struct Delivered {
    pub id: Uuid,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The next `limit` recipients after `cursor`, up to `upper_bound` (user ids in order).
///
/// One statement per audience and bound, each put together from string literals so the query
/// macros check it. All of them take the same parameters ($1 tenant, $2 broadcast, $3 whether
/// it emails, $4 its type, $5 cursor, $6 limit, $7 topic ids, $8 upper bound); one that does not
/// need a parameter still names it (`$2::uuid IS NOT NULL`), as PostgreSQL must learn its type.
#[tracing::instrument(skip_all, fields(broadcast_id = %broadcast.id))]
pub async fn next_chunk(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    cursor: &str,
    upper_bound: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<ChunkRecipient>> {
    // `$user_id` of the rows `$from` joins to the profiles `r`. The email column is the
    // profile's address when the broadcast emails, the recipient accepts email, and has not
    // opted out of this type.
    macro_rules! chunk {
        ($user_id:literal FROM $from:literal $(+ $more:literal)*) => {
            sqlx::query_as!(
                ChunkRecipient,
                "SELECT " + $user_id + r#" AS "user_id!",
                   CASE WHEN $3 AND r.email IS NOT NULL AND r.email_enabled
                     AND NOT ($4 = ANY (r.email_opt_out)) THEN r.email END AS email
                 FROM "# + $from $(+ $more)*,
                broadcast.tenant_id,
                broadcast.id,
                broadcast.send_email,
                broadcast.template.notification_type.as_str(),
                cursor,
                limit,
                &broadcast.topic_ids[..],
                upper_bound,
            )
            .fetch_all(conn)
            .await
        };
    }
    macro_rules! chunk_up_to {
        ($upper:literal) => {
            match broadcast.audience.as_str() {
                // Every profile: the email columns are right there, no join needed.
                "AllUsers" => chunk!("r.user_id" FROM
                    "recipients r WHERE r.tenant_id = $1 AND $2::uuid IS NOT NULL \
                     AND $7::uuid[] IS NOT NULL AND r.user_id > $5" + $upper +
                    " ORDER BY r.user_id LIMIT $6"),
                "Users" => chunk!("a.user_id" FROM
                    "(SELECT user_id FROM broadcast_recipients WHERE tenant_id = $1 AND broadcast_id = $2 \
                     AND $7::uuid[] IS NOT NULL AND user_id > $5" + $upper +
                    " ORDER BY user_id LIMIT $6) AS a \
                     LEFT JOIN recipients r ON r.tenant_id = $1 AND r.user_id = a.user_id ORDER BY a.user_id"),
                _ => chunk!("a.user_id" FROM
                    "(SELECT DISTINCT user_id FROM topic_subscriptions WHERE tenant_id = $1 \
                     AND $2::uuid IS NOT NULL AND topic_id = ANY ($7) AND user_id > $5" + $upper +
                    " ORDER BY user_id LIMIT $6) AS a \
                     LEFT JOIN recipients r ON r.tenant_id = $1 AND r.user_id = a.user_id ORDER BY a.user_id"),
            }
        };
    }
    // The bound is spelled out only when there is one: a generic plan would not simplify
    // `$8 IS NULL OR …`, and the scan of a lane's last chunk would run on past its end.
    if upper_bound.is_some() {
        chunk_up_to!(" AND user_id <= $8")
    } else {
        chunk_up_to!(" AND $8::text IS NULL")
    }
}

/// Calls `$query!` with the audience's user ids, unordered, as a literal subquery ($1 tenant,
/// $2 broadcast, $3 topic ids).
macro_rules! for_audience {
    ($audience:expr, $query:ident) => {
        match $audience {
            "Users" => $query!(
                "SELECT user_id FROM broadcast_recipients WHERE tenant_id = $1 AND broadcast_id = $2 \
                 AND $3::uuid[] IS NOT NULL"
            ),
            "Topics" => $query!(
                "SELECT DISTINCT user_id FROM topic_subscriptions WHERE tenant_id = $1 \
                 AND topic_id = ANY ($3) AND $2::uuid IS NOT NULL"
            ),
            _ => $query!(
                "SELECT user_id FROM recipients WHERE tenant_id = $1 AND $2::uuid IS NOT NULL \
                 AND $3::uuid[] IS NOT NULL"
            ),
        }
    };
}

/// How many recipients the audience has now (progress reporting).
pub async fn audience_size(conn: &mut PgConnection, broadcast: &Broadcast) -> sqlx::Result<i64> {
    macro_rules! count {
        ($ids:literal) => {
            sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM ("# + $ids + ") AS a",
                broadcast.tenant_id,
                broadcast.id,
                &broadcast.topic_ids[..],
            )
            .fetch_one(conn)
            .await
        };
    }
    for_audience!(broadcast.audience.as_str(), count)
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
    macro_rules! bounds {
        ($ids:literal) => {
            sqlx::query_scalar!(
                r#"SELECT user_id AS "user_id!" FROM (SELECT user_id, row_number() OVER (ORDER BY user_id) AS n
                   FROM ("# + $ids + ") AS a) AS o WHERE n % $4 = 0 ORDER BY user_id LIMIT $5",
                broadcast.tenant_id,
                broadcast.id,
                &broadcast.topic_ids[..],
                (total + lanes - 1) / lanes,
                lanes - 1,
            )
            .fetch_all(conn)
            .await
        };
    }
    for_audience!(broadcast.audience.as_str(), bounds)
}

/// Marks the broadcast as fanning out, recording the audience size once.
pub async fn start(conn: &mut PgConnection, broadcast: &Broadcast, total: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE broadcasts SET status = 'FanningOut', started_at = coalesce(started_at, now()), \
         total_recipients = coalesce(total_recipients, $3), updated_at = now() \
         WHERE tenant_id = $1 AND id = $2",
        broadcast.tenant_id,
        broadcast.id,
        i32::try_from(total).unwrap_or(i32::MAX),
    )
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
    let some_exist = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT FROM notifications WHERE tenant_id = $1 AND broadcast_id = $2
             AND user_id > $3 AND user_id <= $4) AS "exists!""#,
        broadcast.tenant_id,
        broadcast.id,
        cursor,
        last.user_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let delivered = insert_rows(conn, broadcast, rows, some_exist).await?;

    let (email_ids, addresses): (Vec<Uuid>, Vec<&str>) = delivered
        .iter()
        .filter_map(|d| d.email.as_deref().map(|email| (d.id, email)))
        .unzip();
    if !email_ids.is_empty() {
        sqlx::query!(
            "INSERT INTO deliveries (tenant_id, notification_id, broadcast_id, channel, target_id, address) \
             SELECT $1, n, $2, 'email', $5, e FROM unnest($3::uuid[], $4::text[]) AS x(n, e) ON CONFLICT DO NOTHING",
            broadcast.tenant_id,
            broadcast.id,
            &email_ids[..],
            &addresses as &[&str],
            crate::db::deliveries::OWN_ADDRESS,
        )
        .execute(conn)
        .await?;
    }
    Ok(delivered)
}

/// The one INSERT of a chunk; returns the rows it created.
async fn insert_rows(
    conn: &mut PgConnection,
    broadcast: &Broadcast,
    rows: Vec<Delivered>,
    skip_existing: bool,
) -> sqlx::Result<Vec<Delivered>> {
    let t = &broadcast.template;
    // The template once, the rows as column arrays.
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let user_ids: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
    let created_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
    let emails: Vec<Option<&str>> = rows.iter().map(|r| r.email.as_deref()).collect();
    // The statement, then `$tail`, run by `$query!` (both forms take the same parameters).
    macro_rules! insert {
        ($($query:ident)::+!($($record:ident,)?) $tail:literal) => {
            $($query)::+!(
                $($record,)?
                "INSERT INTO notifications (tenant_id, id, user_id, subject, message, html_content, \
                   summary, type, priority, status, created_at, sent_at, metadata, broadcast_id, email) \
                 SELECT $1, u.id, u.user_id, $2, $3, $4, $5, $6, $7, 'Sent', u.created_at, now(), $8, $9, u.email \
                 FROM unnest($10::uuid[], $11::text[], $12::timestamptz[], $13::text[]) \
                   AS u(id, user_id, created_at, email)" + $tail,
                broadcast.tenant_id,
                t.subject,
                t.message,
                t.html_content,
                t.summary,
                t.notification_type.as_str(),
                t.priority.rank(),
                Json(&t.metadata) as _,
                broadcast.id,
                &ids[..],
                &user_ids as &[&str],
                &created_at[..],
                &emails as &[Option<&str>],
            )
        };
    }
    if skip_existing {
        return insert!(sqlx::query_as!(Delivered,)
            " ON CONFLICT (tenant_id, broadcast_id, user_id) WHERE broadcast_id IS NOT NULL \
             DO NOTHING RETURNING id, user_id, email, created_at")
        .fetch_all(conn)
        .await;
    }
    insert!(sqlx::query!() "").execute(conn).await?;
    Ok(rows)
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
    sqlx::query!(
        "UPDATE broadcasts SET delivered = delivered + $3, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2",
        broadcast.tenant_id,
        broadcast.id,
        i32::try_from(written).unwrap_or(i32::MAX),
    )
    .execute(&mut *conn)
    .await?;
    if lane_done {
        sqlx::query!(
            "UPDATE broadcasts SET status = 'Completed', completed_at = now() \
             WHERE tenant_id = $1 AND id = $2 AND status = 'FanningOut' AND NOT EXISTS ( \
                 SELECT FROM broadcast_lanes WHERE tenant_id = $1 AND broadcast_id = $2 AND NOT done)",
            broadcast.tenant_id,
            broadcast.id,
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}
