//! `Users`: recipient profiles — where to email each user and what they opted out of.

pub mod model;

use herald_shared::db::{self, recipients::Upserted};
use herald_shared::domain::{RecipientDraft, UserId};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::BackendAuth;
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::AppState;
use crate::tags::ApiTags;
use model::{PutRecipientRequest, Recipient, RecipientPage};

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1_000;

#[derive(ApiResponse)]
pub enum Saved {
    /// Created: the user had no profile yet.
    #[oai(status = 201)]
    Created(Json<Recipient>),
    /// Updated: the profile replaced the stored one.
    #[oai(status = 200)]
    Updated(Json<Recipient>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted: the profile is gone.
    #[oai(status = 204)]
    NoContent,
}

pub struct RecipientsApi;

#[OpenApi(tag = "ApiTags::Users")]
impl RecipientsApi {
    /// Create or replace a recipient profile
    ///
    /// Stores the user's email address, display name, locale and preferences, replacing any
    /// profile stored before (fields left out are cleared). Safe to repeat: the same request
    /// twice leaves the same profile (and `updatedAt` moves only when something changed).
    /// 201 when the profile is new, 200 when it replaced one. A user needs no profile to get
    /// notifications or to join topics; the profile adds email delivery and preferences.
    #[oai(
        path = "/tenant/:tenantId/v1/Users/:userId",
        method = "put",
        operation_id = "putRecipient"
    )]
    async fn put(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user (1–128 characters of letters, digits and `._:@-`).
        #[oai(name = "userId")]
        user_id: Path<String>,
        body: JsonBody<PutRecipientRequest>,
    ) -> ApiResult<Saved> {
        let user = parse_user(user_id.0)?;
        let new = RecipientDraft::from(body.0).validate(user)?;
        let mut conn = state.db.acquire().await?;
        let (recipient, outcome) = db::recipients::upsert(&mut conn, tenant_id.0, &new).await?;
        let dto = Json(Recipient::from(recipient));
        Ok(match outcome {
            Upserted::Created => Saved::Created(dto),
            Upserted::Updated => Saved::Updated(dto),
        })
    }

    /// Get a recipient profile
    ///
    /// 404 when the user has no profile.
    #[oai(
        path = "/tenant/:tenantId/v1/Users/:userId",
        method = "get",
        operation_id = "getRecipient"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user.
        #[oai(name = "userId")]
        user_id: Path<String>,
    ) -> ApiResult<Json<Recipient>> {
        let user = parse_user(user_id.0)?;
        let mut conn = state.db.acquire().await?;
        let recipient = db::recipients::get(&mut conn, tenant_id.0, user.as_str())
            .await?
            .ok_or_else(not_found)?;
        Ok(Json(recipient.into()))
    }

    /// Delete a recipient profile
    ///
    /// Removes the profile only: the user's notifications and topic subscriptions stay. To
    /// erase everything Herald stores about a user, use `DELETE /Notifications/users/{userId}`.
    /// 404 when the user has no profile.
    #[oai(
        path = "/tenant/:tenantId/v1/Users/:userId",
        method = "delete",
        operation_id = "deleteRecipient"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user.
        #[oai(name = "userId")]
        user_id: Path<String>,
    ) -> ApiResult<Deleted> {
        let user = parse_user(user_id.0)?;
        let mut conn = state.db.acquire().await?;
        if db::recipients::delete(&mut conn, tenant_id.0, user.as_str()).await? {
            Ok(Deleted::NoContent)
        } else {
            Err(not_found())
        }
    }

    /// List recipient profiles
    ///
    /// In user id order, a page at a time: pass the `nextAfter` of one page as `after` to get the
    /// next; `nextAfter` is `null` on the last page. Profiles added or removed while you page
    /// never make another one appear twice or go missing.
    #[oai(
        path = "/tenant/:tenantId/v1/Users",
        method = "get",
        operation_id = "listRecipients"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Start after this user id: the `nextAfter` of the previous page. Leave it out for the
        /// first page.
        after: Query<Option<String>>,
        /// Profiles per page, 1 to 1,000 (default 100).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<RecipientPage>> {
        let page_size = paging::page_size(page_size.0, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let after = paging::after_user(after.0)?;
        let mut conn = state.db.acquire().await?;
        let rows = db::recipients::list(
            &mut conn,
            tenant_id.0,
            after.as_ref().map(UserId::as_str),
            page_size + 1,
        )
        .await?;
        let (rows, next_after) = paging::keyset_page(rows, page_size, |r| r.user_id.clone());
        Ok(Json(RecipientPage {
            data: rows.into_iter().map(Into::into).collect(),
            next_after,
        }))
    }
}

fn parse_user(value: String) -> Result<UserId, ApiError> {
    UserId::parse(value).map_err(|e| ApiError::field("userId", e.to_string()))
}

fn not_found() -> ApiError {
    ApiError::not_found("This user has no recipient profile.")
}
