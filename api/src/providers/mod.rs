//! `Providers`: the services a tenant sends email, push, SMS and webhooks through. API key only.

pub mod model;

use herald_shared::db::{self, providers::ProviderRow};
use herald_shared::domain::provider::ProviderDraft;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::BackendAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tags::ApiTags;
use model::{Provider, ProviderList, ProviderRequest};

#[derive(ApiResponse)]
pub enum Created {
    /// Created. For a `webhook` provider this response alone carries the signing `secret`.
    #[oai(status = 201)]
    Created(Json<Provider>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

pub struct ProvidersApi;

#[OpenApi(tag = "ApiTags::Providers")]
impl ProvidersApi {
    /// Create a provider
    ///
    /// Several `smtp` and `sms` providers may exist: each send tries the enabled ones by
    /// `priority` and moves to the next at once when one fails for a reason that is not the
    /// recipient's (refused connection, timeout, a server error). Without any `smtp` provider,
    /// email goes through the installation's own relay. A tenant has at most one `webPush`
    /// provider (push subscriptions belong to its key) and one `webhook` provider (its secret
    /// signs every webhook target). 409 when the name is taken or such a provider exists.
    #[oai(
        path = "/tenant/:tenantId/v1/Providers",
        method = "post",
        operation_id = "createProvider"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        body: JsonBody<ProviderRequest>,
    ) -> ApiResult<Created> {
        let new = ProviderDraft::from(body.0).validate(None, state.config.environment)?;
        let row = ProviderRow {
            id: Uuid::now_v7(),
            name: &new.name,
            priority: new.priority,
            enabled: new.enabled,
            settings: &new.settings,
        };
        let mut conn = state.db.acquire().await?;
        let key = &state.config.secrets;
        match db::providers::insert(&mut conn, tenant_id.0, key, &row).await? {
            Some(stored) => Ok(Created::Created(Json(Provider::created(open(
                &state,
                tenant_id.0,
                stored,
            )?)))),
            None if db::providers::name_taken(&mut conn, tenant_id.0, &new.name).await? => {
                Err(name_taken())
            }
            None => Err(ApiError::conflict(format!(
                "Your tenant has a {} provider already; change it with PUT instead.",
                new.settings.kind().as_str()
            ))),
        }
    }

    /// List providers
    #[oai(
        path = "/tenant/:tenantId/v1/Providers",
        method = "get",
        operation_id = "listProviders"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
    ) -> ApiResult<Json<ProviderList>> {
        let mut conn = state.db.acquire().await?;
        let stored = db::providers::list(&mut conn, tenant_id.0).await?;
        let data = stored
            .into_iter()
            .map(|p| open(&state, tenant_id.0, p).map(Provider::shown))
            .collect::<ApiResult<_>>()?;
        Ok(Json(ProviderList { data }))
    }

    /// Get a provider
    #[oai(
        path = "/tenant/:tenantId/v1/Providers/:id",
        method = "get",
        operation_id = "getProvider"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The provider.
        id: Path<Uuid>,
    ) -> ApiResult<Json<Provider>> {
        let mut conn = state.db.acquire().await?;
        let provider = load(&state, &mut conn, tenant_id.0, id.0).await?;
        Ok(Json(Provider::shown(provider)))
    }

    /// Replace a provider
    ///
    /// `name`, `priority` and `enabled` are replaced; `config` left out keeps the stored
    /// settings. The type cannot change. 409 when the new name is another provider's.
    #[oai(
        path = "/tenant/:tenantId/v1/Providers/:id",
        method = "put",
        operation_id = "putProvider"
    )]
    async fn put(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The provider.
        id: Path<Uuid>,
        body: JsonBody<ProviderRequest>,
    ) -> ApiResult<Json<Provider>> {
        let mut conn = state.db.acquire().await?;
        let stored = load(&state, &mut conn, tenant_id.0, id.0).await?;
        let new = ProviderDraft::from(body.0)
            .validate(Some(&stored.settings), state.config.environment)?;
        let row = ProviderRow {
            id: id.0,
            name: &new.name,
            priority: new.priority,
            enabled: new.enabled,
            settings: &new.settings,
        };
        match db::providers::update(&mut conn, tenant_id.0, &state.config.secrets, &row).await? {
            Some(updated) => Ok(Json(Provider::shown(open(&state, tenant_id.0, updated)?))),
            None if db::providers::get(&mut conn, tenant_id.0, id.0)
                .await?
                .is_none() =>
            {
                Err(not_found())
            }
            None => Err(name_taken()),
        }
    }

    /// Delete a provider
    #[oai(
        path = "/tenant/:tenantId/v1/Providers/:id",
        method = "delete",
        operation_id = "deleteProvider"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The provider.
        id: Path<Uuid>,
    ) -> ApiResult<Deleted> {
        let mut conn = state.db.acquire().await?;
        if db::providers::delete(&mut conn, tenant_id.0, id.0).await? {
            Ok(Deleted::NoContent)
        } else {
            Err(not_found())
        }
    }
}

async fn load(
    state: &AppState,
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> ApiResult<db::providers::Provider> {
    let stored = db::providers::get(conn, tenant_id, id)
        .await?
        .ok_or_else(not_found)?;
    open(state, tenant_id, stored)
}

/// A provider whose secret does not open (HERALD_SECRETS_KEY changed) is an operator's
/// problem, reported as such rather than shown half-read.
fn open(
    state: &AppState,
    tenant_id: Uuid,
    stored: db::providers::StoredProvider,
) -> ApiResult<db::providers::Provider> {
    stored
        .open(tenant_id, &state.config.secrets)
        .map_err(|error| ApiError::internal(&error))
}

fn not_found() -> ApiError {
    ApiError::not_found("Your tenant has no such provider.")
}

fn name_taken() -> ApiError {
    ApiError::conflict("Your tenant has a provider of this name already.")
}
