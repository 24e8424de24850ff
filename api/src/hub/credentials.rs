//! Who may connect, and what the connect URL says: a user's token (never an API key) from the
//! `Authorization` header or the `access_token` query parameter (browsers cannot set headers on
//! a WebSocket), for the tenant in the URL; plus the optional `clientId` and `lastEventAt`.

use chrono::{DateTime, Utc};
use herald_shared::domain::UserId;
use poem::Request;
use serde::Deserialize;
use uuid::Uuid;

use super::expiry::Lease;
use crate::caller::{self, Caller};
use crate::error::{ApiError, BEARER_CHALLENGE};
use crate::state::AppState;

/// The end user a hub connection belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUser {
    pub tenant_id: Uuid,
    pub user_id: UserId,
    /// How long the token it was authenticated with holds.
    pub lease: Lease,
}

impl HubUser {
    /// Whether `other` is the same user (whatever token each came with).
    pub fn is_same_user(&self, other: &Self) -> bool {
        self.tenant_id == other.tenant_id && self.user_id == other.user_id
    }
}

/// The query parameters the hub reads (the client may add others; they are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct HubQuery {
    /// The connection token from negotiate.
    pub id: Option<String>,
    pub access_token: Option<String>,
    #[serde(rename = "clientId")]
    pub client_id: Option<String>,
    #[serde(rename = "lastEventAt")]
    pub last_event_at: Option<String>,
    #[serde(rename = "negotiateVersion")]
    pub negotiate_version: Option<String>,
}

/// Longest `clientId` kept (it only labels a device or tab in logs).
const CLIENT_ID_MAX_CHARS: usize = 128;

impl HubQuery {
    /// Parses the query with form rules, as the SignalR client encodes it.
    pub fn parse(req: &Request) -> Result<Self, ApiError> {
        let query = req.uri().query().unwrap_or_default();
        serde_urlencoded::from_str(query).map_err(|error| {
            ApiError::bad_request(format!("The query string is invalid: {error}."))
        })
    }

    pub fn client_id(&self) -> Result<Option<String>, ApiError> {
        match &self.client_id {
            Some(id) if id.chars().count() > CLIENT_ID_MAX_CHARS => Err(ApiError::field(
                "clientId",
                format!("The client id must be at most {CLIENT_ID_MAX_CHARS} characters."),
            )),
            other => Ok(other.clone().filter(|id| !id.is_empty())),
        }
    }

    /// `lastEventAt` as a time. A `+` of an unencoded offset (`…T10:30:00+02:00`) arrives as a
    /// space after form decoding; it is read back as the `+` it was.
    pub fn last_event_at(&self) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(text) = self.last_event_at.as_deref().filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(&text.replace(' ', "+"))
            .map(|at| Some(at.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::field(
                    "lastEventAt",
                    "Expected an ISO 8601 date-time with an offset, such as 2026-01-15T10:30:00.000Z.",
                )
            })
    }
}

/// The tenant of the URL; a malformed one is a 400 naming `tenantId`, as on REST routes.
pub fn tenant_id(path_value: &str) -> Result<Uuid, ApiError> {
    path_value.parse().map_err(|_| {
        ApiError::field(
            "tenantId",
            "Expected a UUID such as 0195f3c2-7b1e-7cc1-9d2a-4c1f9e1b2a3d.",
        )
    })
}

/// The user a hub request authenticates as: 401 without a valid user token, 403 when the
/// token belongs to another tenant. `Ok(None)` when the request carries no credential at all
/// (an upgrade with a connection token may rely on that token alone).
pub fn authenticate(
    req: &Request,
    state: &AppState,
    query: &HubQuery,
    tenant_id: Uuid,
) -> Result<Option<HubUser>, ApiError> {
    let header = caller::bearer_token(req)?;
    let token = header.or(query.access_token.as_deref().filter(|t| !t.is_empty()));
    let Some(token) = token else {
        return Ok(None);
    };
    let subject = caller::verify_subject(state, token)?;
    let lease = Lease {
        expires_at: subject.expires_at,
        key_id: subject.key_id,
    };
    let caller = Caller::User {
        tenant_id: subject.tenant_id,
        user_id: subject.user_id,
    };
    match caller.in_tenant(tenant_id)? {
        Caller::User { tenant_id, user_id } => Ok(Some(HubUser {
            tenant_id,
            user_id,
            lease,
        })),
        Caller::Backend { .. } => Err(missing()),
    }
}

/// Like [`authenticate`], but a credential is required.
pub fn require_user(
    req: &Request,
    state: &AppState,
    query: &HubQuery,
    tenant_id: Uuid,
) -> Result<HubUser, ApiError> {
    authenticate(req, state, query, tenant_id)?.ok_or_else(missing)
}

fn missing() -> ApiError {
    ApiError::unauthorized(
        "Authentication required: send the user's token as `Authorization: Bearer …` or as the \
         `access_token` query parameter. The hub serves end users; API keys are not accepted.",
        BEARER_CHALLENGE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> HubQuery {
        serde_urlencoded::from_str(text).unwrap()
    }

    #[test]
    fn last_event_at_reads_iso_8601_however_the_offset_was_encoded() {
        let expected = "2026-01-15T08:30:00Z".parse::<DateTime<Utc>>().unwrap();
        for text in [
            "lastEventAt=2026-01-15T08%3A30%3A00.000Z",
            "lastEventAt=2026-01-15T10:30:00%2B02:00",
            "lastEventAt=2026-01-15T10:30:00+02:00",
        ] {
            assert_eq!(
                query(text).last_event_at().unwrap(),
                Some(expected),
                "{text}"
            );
        }
        assert_eq!(query("clientId=x").last_event_at().unwrap(), None);
        assert!(query("lastEventAt=yesterday").last_event_at().is_err());
    }

    #[test]
    fn the_client_id_is_optional_and_bounded() {
        assert_eq!(
            query("clientId=tab%201").client_id().unwrap().as_deref(),
            Some("tab 1")
        );
        assert_eq!(query("").client_id().unwrap(), None);
        let long = format!("clientId={}", "x".repeat(CLIENT_ID_MAX_CHARS + 1));
        assert!(query(&long).client_id().is_err());
    }
}
