//! Queries on topics and their subscriptions. Every query filters by tenant in SQL.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{NewTopic, Subscription, Topic, ids};

/// `sqlx::query_as!` into [`Row`]: `topic_query!("WHERE …", args…)` reads topics `t` with the
/// live subscriber count. The count is an index-only scan of the subscriptions' primary key, so
/// no counter can drift.
macro_rules! topic_query {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"SELECT t.id, t.name, t.description, t.created_at,
                 (SELECT count(*) FROM topic_subscriptions s
                  WHERE s.tenant_id = t.tenant_id AND s.topic_id = t.id) AS "subscriber_count!"
               FROM topics t "# + $rest,
            $($arg),*
        )
    };
}

struct Row {
    id: Uuid,
    name: String,
    description: Option<String>,
    created_at: DateTime<Utc>,
    subscriber_count: i64,
}

impl From<Row> for Topic {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            subscriber_count: row.subscriber_count,
            created_at: row.created_at,
        }
    }
}

/// Stores a new topic; `None` when the tenant already has a topic of that name (the
/// `topics_name_key` constraint), which is a client's conflict rather than an error.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewTopic,
) -> sqlx::Result<Option<Topic>> {
    let (id, created_at) = ids::new_id();
    let inserted = sqlx::query!(
        "INSERT INTO topics (tenant_id, id, name, description, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT ON CONSTRAINT topics_name_key DO NOTHING",
        tenant_id,
        id,
        new.name,
        new.description.as_deref(),
        created_at,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok((inserted > 0).then(|| Topic {
        id,
        name: new.name.clone(),
        description: new.description.clone(),
        subscriber_count: 0,
        created_at,
    }))
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, topic_id = %id))]
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Topic>> {
    let row = topic_query!("WHERE t.tenant_id = $1 AND t.id = $2", tenant_id, id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Into::into))
}

/// Up to `limit` topics, oldest first, starting after the topic `after` (keyset paging on the
/// primary key; ids are UUIDv7, so id order is creation order).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Topic>> {
    let rows = topic_query!(
        "WHERE t.tenant_id = $1 AND t.id > $2 ORDER BY t.id LIMIT $3",
        tenant_id,
        // The nil UUID sorts before every real id: one statement serves the first page too.
        after.unwrap_or(Uuid::nil()),
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Deletes a topic; its subscriptions go with it (foreign key `ON DELETE CASCADE`). `false`
/// when there was no such topic.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, topic_id = %id))]
pub async fn delete(conn: &mut PgConnection, tenant_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM topics WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        id,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}

/// Whether the topic exists, holding a key-share lock on it until the transaction ends so a
/// concurrent delete waits for subscriptions being added rather than failing them.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, topic_id = %id))]
pub async fn lock_existing(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        "SELECT 1 AS found FROM topics WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE",
        tenant_id,
        id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Whether the topic exists (no lock).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, topic_id = %id))]
pub async fn exists(conn: &mut PgConnection, tenant_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM topics WHERE tenant_id = $1 AND id = $2) AS "exists!""#,
        tenant_id,
        id,
    )
    .fetch_one(conn)
    .await
}

/// Subscribes every user in `user_ids` (unique) in one statement; returns how many were new.
/// Users already subscribed are left as they were, so repeating a request changes nothing.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, topic_id = %topic_id, users = user_ids.len()))]
pub async fn subscribe(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    topic_id: Uuid,
    user_ids: &[String],
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "INSERT INTO topic_subscriptions (tenant_id, topic_id, user_id) \
         SELECT $1, $2, user_id FROM unnest($3::text[]) AS user_id \
         ON CONFLICT (tenant_id, topic_id, user_id) DO NOTHING",
        tenant_id,
        topic_id,
        user_ids,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Unsubscribes every user in `user_ids` in one statement; returns how many were subscribed.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, topic_id = %topic_id, users = user_ids.len()))]
pub async fn unsubscribe(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    topic_id: Uuid,
    user_ids: &[String],
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM topic_subscriptions \
         WHERE tenant_id = $1 AND topic_id = $2 AND user_id = ANY($3)",
        tenant_id,
        topic_id,
        user_ids,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Up to `limit` subscribers of a topic in user id order, starting after `after` (keyset
/// paging on the primary key). No `after` binds `''`, which sorts before every user id.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, topic_id = %topic_id))]
pub async fn subscribers(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    topic_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<Subscription>> {
    sqlx::query_as!(
        Subscription,
        "SELECT user_id, created_at AS subscribed_at FROM topic_subscriptions \
         WHERE tenant_id = $1 AND topic_id = $2 AND user_id > $3 ORDER BY user_id LIMIT $4",
        tenant_id,
        topic_id,
        after.unwrap_or_default(),
        limit,
    )
    .fetch_all(conn)
    .await
}
