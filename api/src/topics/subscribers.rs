//! A topic's subscribers: bulk subscribe and unsubscribe (up to 10,000 users per request, one
//! SQL statement each), and paging through them.

use herald_shared::db;
use herald_shared::domain::{UserId, topic::parse_user_ids};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::model::{SubscribeResult, SubscriberPage, SubscribersRequest, UnsubscribeResult};
use super::not_found;
use crate::body::JsonBody;
use crate::caller::BackendAuth;
use crate::error::ApiResult;
use crate::paging;
use crate::state::AppState;
use crate::tags::ApiTags;

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1_000;

pub struct TopicSubscribersApi;

#[OpenApi(tag = "ApiTags::Topics")]
impl TopicSubscribersApi {
    /// Subscribe users to a topic
    ///
    /// Subscribes 1 to 10,000 users in one request. Safe to repeat: users already subscribed
    /// stay as they were and are counted in `alreadySubscribed`. A bad id fails the whole
    /// request (400, named by its position, e.g. `userIds[3]`) and subscribes no one.
    #[oai(
        path = "/tenant/:tenantId/v1/Topics/:topicId/subscribers",
        method = "put",
        operation_id = "subscribeToTopic"
    )]
    async fn subscribe(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The topic id.
        #[oai(name = "topicId")]
        topic_id: Path<Uuid>,
        body: JsonBody<SubscribersRequest>,
    ) -> ApiResult<Json<SubscribeResult>> {
        let user_ids = parse_user_ids(body.0.user_ids)?;
        let mut tx = state.db.begin().await?;
        if !db::topics::lock_existing(&mut tx, tenant_id.0, topic_id.0).await? {
            return Err(not_found());
        }
        let added = db::topics::subscribe(&mut tx, tenant_id.0, topic_id.0, &user_ids).await?;
        tx.commit().await?;
        let added = i64::try_from(added).unwrap_or(i64::MAX);
        Ok(Json(SubscribeResult {
            added,
            already_subscribed: user_ids.len() as i64 - added,
        }))
    }

    /// Unsubscribe users from a topic
    ///
    /// Unsubscribes 1 to 10,000 users in one request; ids that were not subscribed are fine and
    /// count zero in `removed`.
    #[oai(
        path = "/tenant/:tenantId/v1/Topics/:topicId/subscribers",
        method = "delete",
        operation_id = "unsubscribeFromTopic"
    )]
    async fn unsubscribe(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The topic id.
        #[oai(name = "topicId")]
        topic_id: Path<Uuid>,
        body: JsonBody<SubscribersRequest>,
    ) -> ApiResult<Json<UnsubscribeResult>> {
        let user_ids = parse_user_ids(body.0.user_ids)?;
        let mut conn = state.db.acquire().await?;
        if !db::topics::exists(&mut conn, tenant_id.0, topic_id.0).await? {
            return Err(not_found());
        }
        let removed =
            db::topics::unsubscribe(&mut conn, tenant_id.0, topic_id.0, &user_ids).await?;
        Ok(Json(UnsubscribeResult {
            removed: i64::try_from(removed).unwrap_or(i64::MAX),
        }))
    }

    /// List a topic's subscribers
    ///
    /// In user id order, a page at a time: pass the `nextAfter` of one page as `after` to get the
    /// next; `nextAfter` is `null` on the last page.
    #[oai(
        path = "/tenant/:tenantId/v1/Topics/:topicId/subscribers",
        method = "get",
        operation_id = "listTopicSubscribers"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The topic id.
        #[oai(name = "topicId")]
        topic_id: Path<Uuid>,
        /// Start after this user id: the `nextAfter` of the previous page. Leave it out for the
        /// first page.
        after: Query<Option<String>>,
        /// Subscribers per page, 1 to 1,000 (default 100).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<SubscriberPage>> {
        let page_size = paging::page_size(page_size.0, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let after = paging::after_user(after.0)?;
        let mut conn = state.db.acquire().await?;
        if !db::topics::exists(&mut conn, tenant_id.0, topic_id.0).await? {
            return Err(not_found());
        }
        let rows = db::topics::subscribers(
            &mut conn,
            tenant_id.0,
            topic_id.0,
            after.as_ref().map(UserId::as_str),
            page_size + 1,
        )
        .await?;
        let (rows, next_after) = paging::keyset_page(rows, page_size, |s| s.user_id.clone());
        Ok(Json(SubscriberPage {
            data: rows.into_iter().map(Into::into).collect(),
            next_after,
        }))
    }
}
