//! `Auth`: exchanging the tenant's API key for an end user's token.

use herald_shared::domain::{FieldErrors, UserId};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::{Auth, BackendAuth, Caller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tags::ApiTags;

/// Shortest and longest token lifetimes a caller may ask for.
const MIN_EXPIRES_IN: u64 = 60;
pub(crate) const MAX_EXPIRES_IN: u64 = 30 * 24 * 3600;

/// A request for a user token.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct TokenExchangeRequest {
    /// Your id for the user (1–128 characters of letters, digits and `._:@-`). The token lets
    /// its holder read and change only this user's data.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub user_id: String,
    /// Lifetime in seconds (60 to 2,592,000). Defaults to the server's `HERALD_JWT_TTL_SECS`
    /// (12 hours unless configured).
    #[oai(validator(minimum(value = "60"), maximum(value = "2592000")))]
    pub expires_in: Option<u64>,
}

/// A user token.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct TokenExchangeResponse {
    /// The JWT. Send it as `Authorization: Bearer <token>`, or as the hub's `accessTokenFactory`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// The caller as Herald sees it.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct WhoAmI {
    /// The tenant the credential belongs to.
    pub tenant_id: Uuid,
    /// `ApiKey` (your backend) or `Bearer` (an end user).
    pub credential: String,
    /// The user a bearer token speaks for; absent for API keys.
    pub user_id: Option<String>,
}

pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Exchange the API key for a user token
    ///
    /// Your backend calls this (with the tenant's `X-API-Key`) when one of your users signs in,
    /// and hands the returned JWT to that user's browser or app. The token authenticates REST
    /// calls and the real-time hub as that user, and only that user.
    #[oai(
        path = "/tenant/:tenantId/v1/Auth/token-exchange",
        method = "post",
        operation_id = "exchangeToken"
    )]
    async fn token_exchange(
        &self,
        state: Data<&AppState>,
        auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        _tenant_id: Path<Uuid>,
        body: JsonBody<TokenExchangeRequest>,
    ) -> ApiResult<Json<TokenExchangeResponse>> {
        let caller = auth.0;
        exchange(&state, &caller, body.0)
    }

    /// Describe the calling credential
    ///
    /// Answers which tenant (and, for a bearer token, which user) the request authenticates as.
    /// Use it to check a token your frontend holds, or an API key after rotating it.
    #[oai(
        path = "/tenant/:tenantId/v1/Auth/whoami",
        method = "get",
        operation_id = "whoAmI"
    )]
    async fn whoami(
        &self,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        _tenant_id: Path<Uuid>,
    ) -> ApiResult<Json<WhoAmI>> {
        Ok(Json(describe(auth.0)))
    }
}

fn describe(caller: Caller) -> WhoAmI {
    match caller {
        Caller::Backend { tenant_id, .. } => WhoAmI {
            tenant_id,
            credential: "ApiKey".to_owned(),
            user_id: None,
        },
        Caller::User { tenant_id, user_id } => WhoAmI {
            tenant_id,
            credential: "Bearer".to_owned(),
            user_id: Some(user_id.into_string()),
        },
    }
}

fn exchange(
    state: &AppState,
    caller: &Caller,
    request: TokenExchangeRequest,
) -> ApiResult<Json<TokenExchangeResponse>> {
    let mut errors = FieldErrors::new();
    let user_id = errors.check("userId", UserId::parse(request.user_id));
    let expires_in = request.expires_in.unwrap_or(state.jwt.default_ttl_secs());
    if !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&expires_in) {
        errors.add(
            "expiresIn",
            format!("The lifetime must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds."),
        );
    }
    let user_id = errors.finish(user_id)?;
    // Only API keys reach here (`BackendAuth`); the token records which one, so revoking the
    // key revokes the tokens it minted.
    let Caller::Backend { key_id, .. } = caller else {
        return Err(ApiError::forbidden("Only an API key may mint user tokens."));
    };
    let token = state
        .jwt
        .issue(caller.tenant_id(), &user_id, expires_in, *key_id)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(TokenExchangeResponse {
        token,
        token_type: "Bearer".to_owned(),
        expires_in,
    }))
}
