//! Queries on targets: a user's email addresses, phone numbers, webhook URLs and push
//! subscriptions. Every query filters by tenant in SQL.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::ids;
use crate::domain::target::{MAX_TARGETS_PER_USER, NewTarget, PushKeys, Target};

struct Row {
    id: Uuid,
    user_id: String,
    kind: String,
    address: String,
    push_p256dh: Option<String>,
    push_auth: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Target {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            user_id: row.user_id,
            kind: row
                .kind
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            address: row.address,
            push_keys: match (row.push_p256dh, row.push_auth) {
                (Some(p256dh), Some(auth)) => Some(PushKeys { p256dh, auth }),
                _ => None,
            },
            created_at: row.created_at,
        })
    }
}

/// What registering a target did.
pub enum Registered {
    /// A new target.
    Created(Target),
    /// The user already had this address: the stored target (a push subscription's keys are
    /// replaced by the new ones, as the browser renewed them).
    Existing(Target),
    /// The user has [`MAX_TARGETS_PER_USER`] targets already.
    TooMany,
}

/// Registers `new` for the user, once per address. The limit is checked in the same statement.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn register(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    new: &NewTarget,
) -> sqlx::Result<Registered> {
    let (id, created_at) = ids::new_id();
    let (p256dh, auth) = match &new.push_keys {
        Some(keys) => (Some(keys.p256dh.as_str()), Some(keys.auth.as_str())),
        None => (None, None),
    };
    let row = sqlx::query!(
        r#"INSERT INTO targets (tenant_id, id, user_id, type, address, push_p256dh, push_auth, created_at)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8
           WHERE (SELECT count(*) FROM targets WHERE tenant_id = $1 AND user_id = $3) < $9
              OR EXISTS (SELECT 1 FROM targets WHERE tenant_id = $1 AND user_id = $3 AND type = $4 AND address = $5)
           ON CONFLICT ON CONSTRAINT targets_address_key DO UPDATE
             SET push_p256dh = EXCLUDED.push_p256dh, push_auth = EXCLUDED.push_auth
           RETURNING id, user_id, type AS kind, address, push_p256dh, push_auth, created_at,
             (xmax = 0) AS "inserted!""#,
        tenant_id,
        id,
        user_id,
        new.kind.as_str(),
        new.address,
        p256dh,
        auth,
        created_at,
        MAX_TARGETS_PER_USER,
    )
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(Registered::TooMany);
    };
    let inserted = row.inserted;
    let target = Target::try_from(Row {
        id: row.id,
        user_id: row.user_id,
        kind: row.kind,
        address: row.address,
        push_p256dh: row.push_p256dh,
        push_auth: row.push_auth,
        created_at: row.created_at,
    })?;
    Ok(if inserted {
        Registered::Created(target)
    } else {
        Registered::Existing(target)
    })
}

/// The user's targets, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
) -> sqlx::Result<Vec<Target>> {
    sqlx::query_as!(
        Row,
        "SELECT id, user_id, type AS kind, address, push_p256dh, push_auth, created_at \
         FROM targets WHERE tenant_id = $1 AND user_id = $2 ORDER BY id",
        tenant_id,
        user_id,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Target::try_from)
    .collect()
}

/// One target, by id.
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Target>> {
    sqlx::query_as!(
        Row,
        "SELECT id, user_id, type AS kind, address, push_p256dh, push_auth, created_at \
         FROM targets WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        id,
    )
    .fetch_optional(conn)
    .await?
    .map(Target::try_from)
    .transpose()
}

/// Removes one of the user's targets; false when the user has no such target.
pub async fn delete(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    user_id: &str,
    id: Uuid,
) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM targets WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
        tenant_id,
        user_id,
        id,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(deleted == 1)
}

/// Removes a push subscription the push service says is gone (404/410), if it is still the
/// same subscription (not re-registered meanwhile with the same endpoint under new keys).
pub async fn delete_expired_subscription(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    p256dh: &str,
) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM targets WHERE tenant_id = $1 AND id = $2 AND type = 'webPush' AND push_p256dh = $3",
        tenant_id,
        id,
        p256dh,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(deleted == 1)
}
