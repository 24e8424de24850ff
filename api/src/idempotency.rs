//! `Idempotency-Key` handling shared by the creating operations (notifications, broadcasts).

use herald_shared::db::idempotency::{self, Claim};
use poem_openapi::types::ParseFromJSON;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Longest accepted `Idempotency-Key`.
const KEY_MAX_CHARS: usize = 255;

/// The key as sent, if valid: 1–255 visible ASCII characters.
pub fn validate_key(key: String) -> Result<String, ApiError> {
    let valid = !key.is_empty()
        && key.chars().count() <= KEY_MAX_CHARS
        && key.chars().all(|c| c.is_ascii_graphic());
    if valid {
        Ok(key)
    } else {
        Err(ApiError::field(
            "Idempotency-Key",
            format!("The Idempotency-Key must be 1 to {KEY_MAX_CHARS} visible ASCII characters."),
        ))
    }
}

/// Claims `key` for this request inside the caller's transaction. `Some(response)` is the
/// stored first response to replay; `None` means go ahead (then store the response with
/// `herald_shared::db::idempotency::complete`); a different request under the key is 422.
pub async fn claim<T: ParseFromJSON>(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    scope: &str,
    key: &str,
    request: &impl serde::Serialize,
) -> ApiResult<Option<T>> {
    match idempotency::claim(
        conn,
        tenant_id,
        scope,
        key,
        &idempotency::fingerprint(request),
    )
    .await?
    {
        Claim::Fresh => Ok(None),
        Claim::Replay { body, .. } => T::parse_from_json(Some(body))
            .map(Some)
            .map_err(|e| ApiError::internal(&std::io::Error::other(e.into_message()))),
        Claim::Mismatch => Err(ApiError::unprocessable(
            "This Idempotency-Key was already used with a different request body.",
        )),
    }
}
