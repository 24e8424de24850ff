//! `Idempotency-Key` handling for every creating operation (notifications, broadcasts, chat
//! messages, chat broadcasts), in one guard so each route says only what is its own: what the
//! request is, and what it answered.

use herald_shared::db::idempotency::{self, Claim};
use poem_openapi::types::{ParseFromJSON, ToJSON};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::{ApiError, ApiResult};

/// Longest accepted `Idempotency-Key`.
const KEY_MAX_CHARS: usize = 255;

/// One create request's `Idempotency-Key`, from the header to the stored response:
/// [`IdempotencyGuard::new`] validates it, [`IdempotencyGuard::replay`] claims it inside the
/// request's transaction, [`IdempotencyGuard::complete`] stores the answer in that same
/// transaction. Without a key every step does nothing.
pub struct IdempotencyGuard(Option<Scoped>);

struct Scoped {
    tenant_id: Uuid,
    /// Keys belong to the tenant's backend as a whole, or to one user.
    caller: String,
    key: String,
    fingerprint: Vec<u8>,
}

impl IdempotencyGuard {
    /// Validates the header (400 unless 1–255 visible ASCII characters) and fingerprints
    /// `request`: everything that makes two requests the same one (the body, and the path's ids
    /// or the acting user where they matter, so one key cannot replay into another chat).
    pub fn new(
        header: Option<String>,
        caller: &Caller,
        request: &impl serde::Serialize,
    ) -> ApiResult<Self> {
        let Some(key) = header else {
            return Ok(Self(None));
        };
        Ok(Self(Some(Scoped {
            tenant_id: caller.tenant_id(),
            caller: caller.idempotency_scope(),
            key: validate_key(key)?,
            fingerprint: idempotency::fingerprint(request),
        })))
    }

    /// `Some(response)`: the key's first response, to answer again (marked as a replay) with
    /// nothing changed. `None`: go ahead, then [`IdempotencyGuard::complete`]. The same key with
    /// a different request is 422. A concurrent twin waits on the key's row lock until the first
    /// commits, then replays.
    pub async fn replay<T: ParseFromJSON>(&self, conn: &mut PgConnection) -> ApiResult<Option<T>> {
        let Some(scoped) = &self.0 else {
            return Ok(None);
        };
        let claim = idempotency::claim(
            conn,
            scoped.tenant_id,
            &scoped.caller,
            &scoped.key,
            &scoped.fingerprint,
        )
        .await?;
        match claim {
            Claim::Fresh => Ok(None),
            Claim::Replay { body, .. } => T::parse_from_json(Some(body))
                .map(Some)
                .map_err(|e| ApiError::internal(&std::io::Error::other(e.into_message()))),
            Claim::Mismatch => Err(ApiError::unprocessable(
                "This Idempotency-Key was already used with a different request body.",
            )),
        }
    }

    /// Stores the response under the key, in the transaction that did the work.
    pub async fn complete(
        &self,
        conn: &mut PgConnection,
        status: u16,
        response: &impl ToJSON,
    ) -> ApiResult<()> {
        let Some(scoped) = &self.0 else {
            return Ok(());
        };
        let body = response.to_json().unwrap_or_default();
        idempotency::complete(
            conn,
            scoped.tenant_id,
            &scoped.caller,
            &scoped.key,
            status,
            &body,
        )
        .await?;
        Ok(())
    }
}

/// The key as sent, if valid: 1–255 visible ASCII characters.
fn validate_key(key: String) -> Result<String, ApiError> {
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
