//! `Topics`: named groups of users that broadcasts can target.

pub mod model;
pub mod subscribers;

use herald_shared::db;
use herald_shared::domain::TopicDraft;
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
use model::{CreateTopicRequest, Topic, TopicPage};

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 100;

#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Created(
        Json<Topic>,
        /// Where the topic can be read.
        #[oai(header = "Location")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted, with all its subscriptions.
    #[oai(status = 204)]
    NoContent,
}

pub struct TopicsApi;

#[OpenApi(tag = "ApiTags::Topics")]
impl TopicsApi {
    /// Create a topic
    ///
    /// A named group of users that broadcasts can target. Names are unique in your tenant: a
    /// second topic with the same name is 409.
    #[oai(
        path = "/tenant/:tenantId/v1/Topics",
        method = "post",
        operation_id = "createTopic"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        body: JsonBody<CreateTopicRequest>,
    ) -> ApiResult<Created> {
        let new = TopicDraft::from(body.0).validate()?;
        let mut conn = state.db.acquire().await?;
        let topic = db::topics::insert(&mut conn, tenant_id.0, &new)
            .await?
            .ok_or_else(|| {
                ApiError::conflict(format!("A topic named {:?} already exists.", new.name))
            })?;
        let location = format!("/tenant/{}/v1/Topics/{}", tenant_id.0, topic.id);
        Ok(Created::Created(Json(topic.into()), location))
    }

    /// List topics
    ///
    /// Oldest first, a page at a time: pass the `nextAfter` of one page as `after` to get the
    /// next; `nextAfter` is `null` on the last page.
    #[oai(
        path = "/tenant/:tenantId/v1/Topics",
        method = "get",
        operation_id = "listTopics"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Start after this topic id: the `nextAfter` of the previous page. Leave it out for the
        /// first page.
        after: Query<Option<Uuid>>,
        /// Topics per page, 1 to 100 (default 50).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<TopicPage>> {
        let page_size = paging::page_size(page_size.0, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let mut conn = state.db.acquire().await?;
        let rows = db::topics::list(&mut conn, tenant_id.0, after.0, page_size + 1).await?;
        let (rows, next_after) = paging::keyset_page(rows, page_size, |t| t.id);
        Ok(Json(TopicPage {
            data: rows.into_iter().map(Into::into).collect(),
            next_after,
        }))
    }

    /// Get a topic
    ///
    /// With its current subscriber count.
    #[oai(
        path = "/tenant/:tenantId/v1/Topics/:topicId",
        method = "get",
        operation_id = "getTopic"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The topic id.
        #[oai(name = "topicId")]
        topic_id: Path<Uuid>,
    ) -> ApiResult<Json<Topic>> {
        let mut conn = state.db.acquire().await?;
        let topic = db::topics::get(&mut conn, tenant_id.0, topic_id.0)
            .await?
            .ok_or_else(not_found)?;
        Ok(Json(topic.into()))
    }

    /// Delete a topic
    ///
    /// Removes the topic and all its subscriptions. The users themselves, their profiles and
    /// their notifications stay.
    #[oai(
        path = "/tenant/:tenantId/v1/Topics/:topicId",
        method = "delete",
        operation_id = "deleteTopic"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The topic id.
        #[oai(name = "topicId")]
        topic_id: Path<Uuid>,
    ) -> ApiResult<Deleted> {
        let mut conn = state.db.acquire().await?;
        if db::topics::delete(&mut conn, tenant_id.0, topic_id.0).await? {
            Ok(Deleted::NoContent)
        } else {
            Err(not_found())
        }
    }
}

/// Unknown topics and other tenants' topics look the same.
pub(crate) fn not_found() -> ApiError {
    ApiError::not_found("No such topic.")
}
