//! Who is calling: the authentication extractors every tenant route uses.
//!
//! Two credentials exist (README, "Authentication"): a tenant's API key (`X-API-Key`, the
//! application backend, acting for the whole tenant) and an end user's JWT (`Authorization: Bearer`). Operations take
//! [`Auth`] (either) or [`BackendAuth`] (API key only); both declare their schemes so Swagger
//! shows them, and both answer 401 problem bodies with the reason.
//!
//! Both also check the tenant: every route taking them lives under `/tenant/{tenantId}/`, and a
//! credential of another tenant is refused with 403 before the handler runs. Handlers therefore
//! never repeat the check, and one that forgets nothing cannot leak across tenants.

use herald_shared::auth::{TokenError, TokenSubject, api_key};
use herald_shared::db;
use herald_shared::domain::UserId;
use poem::Request;
use poem::RequestBody;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use uuid::Uuid;

use crate::error::{ApiError, BEARER_CHALLENGE, expected_uuid};
use crate::state::AppState;

const API_KEY_SCHEME: &str = "ApiKey";
const BEARER_SCHEME: &str = "Bearer";
const API_KEY_HEADER: &str = "X-API-Key";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A tenant's backend, by API key: may act for any user of the tenant.
    Backend { tenant_id: Uuid, key_id: Uuid },
    /// An end user, by JWT: may act only for itself.
    User { tenant_id: Uuid, user_id: UserId },
}

impl Caller {
    pub fn tenant_id(&self) -> Uuid {
        match self {
            Self::Backend { tenant_id, .. } | Self::User { tenant_id, .. } => *tenant_id,
        }
    }

    /// The end user a token speaks for; `None` for API keys.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::User { user_id, .. } => Some(user_id),
            Self::Backend { .. } => None,
        }
    }

    /// Whose data a request concerns. A user token always means its own user (naming another
    /// is 403); an API key must name the user in `field` (400 when missing).
    pub fn acting_user(&self, requested: Option<String>, field: &str) -> Result<UserId, ApiError> {
        match (self, requested) {
            (Self::User { user_id, .. }, None) => Ok(user_id.clone()),
            (Self::User { user_id, .. }, Some(requested)) if requested == user_id.as_str() => {
                Ok(user_id.clone())
            }
            (Self::User { .. }, Some(_)) => Err(ApiError::forbidden(
                "A user token may only act on its own user's data.",
            )),
            (Self::Backend { .. }, Some(requested)) => {
                UserId::parse(requested).map_err(|e| ApiError::field(field, e.to_string()))
            }
            (Self::Backend { .. }, None) => Err(ApiError::field(
                field,
                format!("The {field} is required when calling with an API key."),
            )),
        }
    }

    /// Who owns idempotency keys: the tenant's backend as a whole, or one user.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Self::Backend { .. } => "backend".to_owned(),
            Self::User { user_id, .. } => herald_shared::db::users::user_caller(user_id.as_str()),
        }
    }

    /// The caller, if its credential belongs to `tenant_id` (the tenant in the URL); 403 otherwise.
    pub(crate) fn in_tenant(self, tenant_id: Uuid) -> Result<Self, ApiError> {
        if self.tenant_id() == tenant_id {
            Ok(self)
        } else {
            Err(ApiError::forbidden(
                "The credential belongs to another tenant than the one in the URL.",
            ))
        }
    }
}

/// Either an API key or a user's bearer token, of the tenant in the URL.
pub struct Auth(pub Caller);

/// An API key only, of the tenant in the URL: operations for the tenant's backend.
pub struct BackendAuth(pub Caller);

impl<'a> ApiExtractor<'a> for Auth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_schemes(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![API_KEY_SCHEME, BEARER_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        authorize(req, true).await.map(Self).map_err(Into::into)
    }
}

impl<'a> ApiExtractor<'a> for BackendAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_schemes(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![API_KEY_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        authorize(req, false).await.map(Self).map_err(Into::into)
    }
}

fn register_schemes(registry: &mut Registry) {
    registry.create_security_scheme(
        API_KEY_SCHEME,
        MetaSecurityScheme {
            ty: "apiKey",
            description: Some(
                "A tenant API key (created with `herald-admin apikey create`). For your backend \
                 only: it acts for every user of the tenant. Never ship it to a browser or app.",
            ),
            name: Some(API_KEY_HEADER),
            key_in: Some("header"),
            scheme: None,
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        },
    );
    registry.create_security_scheme(
        BEARER_SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "An end user's JWT from `POST /tenant/{tenantId}/v1/Auth/token-exchange` (or from \
                 your identity service when Herald is configured to trust it). It acts only \
                 for that user.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// The request's caller, once its credential is known to belong to the tenant the URL names.
async fn authorize(req: &Request, allow_user: bool) -> Result<Caller, ApiError> {
    let caller = authenticate(req, allow_user).await?;
    caller.in_tenant(tenant_in_path(req)?)
}

/// The tenant of `/tenant/{tenantId}/…`, percent-decoded as the router decodes path parameters.
fn tenant_in_path(req: &Request) -> Result<Uuid, ApiError> {
    let path = req.uri().path();
    let Some(segment) = path
        .strip_prefix("/tenant/")
        .and_then(|rest| rest.split('/').next())
    else {
        // A route outside the tenant tree asked for a tenant credential: a programming error,
        // refused rather than guessed at.
        let error = std::io::Error::other(format!("{path} takes a credential but names no tenant"));
        return Err(ApiError::internal(&error));
    };
    let segment = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    Uuid::parse_str(&segment).map_err(|_| ApiError::field("tenantId", expected_uuid()))
}

/// Resolves the request's credential. `allow_user` is false for backend-only operations.
pub async fn authenticate(req: &Request, allow_user: bool) -> Result<Caller, ApiError> {
    // Already resolved by the `/api/…` rewrite (seed-002 paths).
    if let Some(caller) = req.extensions().get::<Caller>() {
        return match caller {
            Caller::User { .. } if !allow_user => Err(backend_only()),
            caller => Ok(caller.clone()),
        };
    }
    let state = req
        .data::<AppState>()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("AppState not attached")))?;
    if let Some(key) = req.headers().get(API_KEY_HEADER) {
        let key = key.to_str().unwrap_or_default().trim();
        return verify_api_key(state, key).await;
    }
    let Some(token) = bearer_token(req)? else {
        let needed = if allow_user {
            "an X-API-Key header or an Authorization: Bearer token"
        } else {
            "an X-API-Key header (this operation is for your backend, not end users)"
        };
        return Err(ApiError::unauthorized(
            format!("Authentication required: send {needed}."),
            BEARER_CHALLENGE,
        ));
    };
    if !allow_user {
        return Err(backend_only());
    }
    verify_token(state, token)
}

fn backend_only() -> ApiError {
    ApiError::unauthorized(
        "This operation needs the tenant's API key (X-API-Key); user tokens cannot call it.",
        BEARER_CHALLENGE,
    )
}

/// The bearer token of the `Authorization` header, if any.
pub(crate) fn bearer_token(req: &Request) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(poem::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized(
            "The Authorization header must be `Bearer <token>`.",
            BEARER_CHALLENGE,
        )),
    }
}

pub fn verify_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    verify_subject(state, token).map(|subject| Caller::User {
        tenant_id: subject.tenant_id,
        user_id: subject.user_id,
    })
}

/// Verifies a user token, refusing one whose minting API key has been revoked.
pub fn verify_subject(state: &AppState, token: &str) -> Result<TokenSubject, ApiError> {
    let verified = state
        .jwt
        .verify(token)
        .and_then(|subject| match subject.key_id {
            Some(key_id) if state.revoked_keys.contains(&key_id) => Err(TokenError::KeyRevoked),
            _ => Ok(subject),
        });
    verified.map_err(|error: TokenError| {
        ApiError::unauthorized(
            format!("Invalid bearer token: {error}."),
            format!("{BEARER_CHALLENGE}, error=\"invalid_token\", error_description=\"{error}\""),
        )
    })
}

async fn verify_api_key(state: &AppState, presented: &str) -> Result<Caller, ApiError> {
    let refused = || ApiError::unauthorized("Unknown or revoked API key.", BEARER_CHALLENGE);
    let prefix = api_key::lookup_prefix(presented).ok_or_else(refused)?;
    let key = db::api_keys::find_active_by_prefix(&state.db, prefix)
        .await?
        .ok_or_else(refused)?;
    if !api_key::matches(presented, &key.key_hash) {
        return Err(refused());
    }
    let stale = key
        .last_used_at
        .is_none_or(|at| chrono::Utc::now() - at > chrono::Duration::minutes(1));
    if stale {
        // Off the request path: the timestamp is informational and must not slow the call.
        let db = state.db.clone();
        tokio::spawn(async move {
            if let Err(error) = db::api_keys::touch_last_used(&db, key.id).await {
                tracing::warn!(%error, "could not record API key use");
            }
        });
    }
    Ok(Caller::Backend {
        tenant_id: key.tenant_id,
        key_id: key.id,
    })
}
