//! `Users/{userId}/targets`: where a user is reached beyond the inbox. An API key manages any
//! user's targets; a user token only its own (a browser registers its own push subscription).

pub mod model;

use herald_shared::db::{self, targets::Registered};
use herald_shared::domain::target::{MAX_TARGETS_PER_USER, TargetDraft};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::Auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tags::ApiTags;
use model::{CreateTargetRequest, Target, TargetList};

#[derive(ApiResponse)]
pub enum Registration {
    /// Registered.
    #[oai(status = 201)]
    Created(Json<Target>),
    /// The user already had this target (a push subscription's keys are updated): the stored one.
    #[oai(status = 200)]
    Existing(Json<Target>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted: nothing more is sent to this target.
    #[oai(status = 204)]
    NoContent,
}

pub struct TargetsApi;

#[OpenApi(tag = "ApiTags::Users")]
impl TargetsApi {
    /// Register a target
    ///
    /// An email address, an E.164 phone number, a webhook URL, or a browser push subscription.
    /// Registering the same address again returns the stored target (200); a push
    /// subscription registered again under new keys keeps its id with the new keys. At most 50
    /// targets per user. The user's profile `email` stays their default email address and
    /// need not be registered.
    #[oai(
        path = "/tenant/:tenantId/v1/Users/:userId/targets",
        method = "post",
        operation_id = "createTarget"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user; a user token may name only itself.
        #[oai(name = "userId")]
        user_id: Path<String>,
        body: JsonBody<CreateTargetRequest>,
    ) -> ApiResult<Registration> {
        let user = auth.0.acting_user(Some(user_id.0), "userId")?;
        let new = TargetDraft::from(body.0).validate(state.config.environment)?;
        let mut conn = state.db.acquire().await?;
        match db::targets::register(&mut conn, tenant_id.0, user.as_str(), &new).await? {
            Registered::Created(target) => Ok(Registration::Created(Json(target.into()))),
            Registered::Existing(target) => Ok(Registration::Existing(Json(target.into()))),
            Registered::TooMany => Err(ApiError::conflict(format!(
                "This user has {MAX_TARGETS_PER_USER} targets already; delete one first."
            ))),
        }
    }

    /// List a user's targets
    #[oai(
        path = "/tenant/:tenantId/v1/Users/:userId/targets",
        method = "get",
        operation_id = "listTargets"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user; a user token may name only itself.
        #[oai(name = "userId")]
        user_id: Path<String>,
    ) -> ApiResult<Json<TargetList>> {
        let user = auth.0.acting_user(Some(user_id.0), "userId")?;
        let mut conn = state.db.acquire().await?;
        let targets = db::targets::list(&mut conn, tenant_id.0, user.as_str()).await?;
        Ok(Json(TargetList {
            data: targets.into_iter().map(Into::into).collect(),
        }))
    }

    /// Delete a target
    ///
    /// 404 when the user has no such target.
    #[oai(
        path = "/tenant/:tenantId/v1/Users/:userId/targets/:targetId",
        method = "delete",
        operation_id = "deleteTarget"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user; a user token may name only itself.
        #[oai(name = "userId")]
        user_id: Path<String>,
        /// The target.
        #[oai(name = "targetId")]
        target_id: Path<Uuid>,
    ) -> ApiResult<Deleted> {
        let user = auth.0.acting_user(Some(user_id.0), "userId")?;
        let mut conn = state.db.acquire().await?;
        if db::targets::delete(&mut conn, tenant_id.0, user.as_str(), target_id.0).await? {
            Ok(Deleted::NoContent)
        } else {
            Err(ApiError::not_found("This user has no such target."))
        }
    }
}
