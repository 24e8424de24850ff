//! `Idempotency-Key` records: the same key (per tenant and caller) within 24 hours replays the
//! first response and changes nothing; the same key with a different request is refused.

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

/// How a request with an idempotency key should proceed.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First use of the key: do the work, then [`complete`] in the same transaction.
    Fresh,
    /// The key was used for this very request: answer with the stored response.
    Replay {
        status: u16,
        body: serde_json::Value,
    },
    /// The key was used for a different request.
    Mismatch,
}

/// A stable fingerprint of the request the key was used with.
pub fn fingerprint(request: &impl serde::Serialize) -> Vec<u8> {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    Sha256::digest(canonical).to_vec()
}

/// Claims `key` inside the caller's transaction. A concurrent request with the same key waits
/// on the row lock until the first commits, then replays its response.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn claim(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    caller: &str,
    key: &str,
    request_hash: &[u8],
) -> sqlx::Result<Claim> {
    // Insert, or take over a record older than 24 hours (expired keys are reusable).
    let claimed = sqlx::query_scalar!(
        r#"INSERT INTO idempotency_keys (tenant_id, caller, key, request_hash) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, caller, key) DO UPDATE
             SET request_hash = EXCLUDED.request_hash, response_status = NULL, response_body = NULL, created_at = now()
             WHERE idempotency_keys.created_at < now() - interval '24 hours'
           RETURNING true AS "claimed!""#,
        tenant_id,
        caller,
        key,
        request_hash,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Fresh);
    }
    let stored = sqlx::query!(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys \
         WHERE tenant_id = $1 AND caller = $2 AND key = $3",
        tenant_id,
        caller,
        key,
    )
    .fetch_one(conn)
    .await?;
    Ok(
        match (
            stored.request_hash == request_hash,
            stored.response_status,
            stored.response_body,
        ) {
            (true, Some(status), Some(body)) => Claim::Replay {
                status: u16::try_from(status).unwrap_or(200),
                body,
            },
            _ => Claim::Mismatch,
        },
    )
}

/// Stores the response of a fresh claim (same transaction as the work).
pub async fn complete(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    caller: &str,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response_status = $4, response_body = $5 \
         WHERE tenant_id = $1 AND caller = $2 AND key = $3",
        tenant_id,
        caller,
        key,
        i16::try_from(status).unwrap_or(200),
        body,
    )
    .execute(conn)
    .await?;
    Ok(())
}
