//! `Broadcasts`: one notification to many users, fanned out by `herald-fanout`.

use std::collections::BTreeMap;

use crate::idempotency::IdempotencyGuard;
use chrono::{DateTime, Utc};
use herald_shared::db::broadcasts::{Broadcast, RowLock};
use herald_shared::db::{self, schedules::ScheduleKind};
use herald_shared::domain::QueueAt;
use herald_shared::domain::broadcast::{Audience, BroadcastDraft, BroadcastStatus};
use herald_shared::jobs::FanOut;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::BackendAuth;
use crate::error::{ApiError, ApiResult};
use crate::notifications::model::{NotificationType, Priority};
use crate::state::AppState;
use crate::tags::ApiTags;

const DEFAULT_PAGE_SIZE: i64 = 20;
const MAX_PAGE_SIZE: i64 = 100;

/// A broadcast to create: exactly one of `userIds`, `topicIds` or `allUsers`.
#[derive(Object, Deserialize, Serialize, Debug, Clone)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateBroadcastRequest {
    /// Recipients by id: 1 to 10,000 per broadcast (use topics or `allUsers` for more).
    pub user_ids: Option<Vec<String>>,
    /// Every subscriber of these topics (1 to 100), each once.
    pub topic_ids: Option<Vec<Uuid>>,
    /// Every recipient profile of the tenant (`PUT /Users/{userId}`).
    pub all_users: Option<bool>,
    /// Title, 1–200 characters.
    pub subject: Option<String>,
    /// Plain-text body, 1–10,000 characters (may be omitted when `htmlContent` is given).
    pub message: Option<String>,
    /// HTML body (at most 100 KB), sanitized like a notification's.
    pub html_content: Option<String>,
    /// At most 500 characters.
    pub summary: Option<String>,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub notification_type: Option<NotificationType>,
    /// Defaults to `Normal`.
    pub priority: Option<Priority>,
    /// Up to 32 string entries copied to every notification.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Start later (ISO 8601, at most a year ahead); `Scheduled` until then.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Also email each recipient at the address of their profile, unless they opted out.
    pub email: Option<bool>,
}

impl From<CreateBroadcastRequest> for BroadcastDraft {
    fn from(r: CreateBroadcastRequest) -> Self {
        Self {
            user_ids: r.user_ids,
            topic_ids: r.topic_ids,
            all_users: r.all_users,
            subject: r.subject,
            message: r.message,
            html_content: r.html_content,
            summary: r.summary,
            notification_type: r.notification_type.map(Into::into),
            priority: r.priority.map(Into::into),
            metadata: r.metadata,
            scheduled_for: r.scheduled_for,
            email: r.email,
        }
    }
}

/// Where a broadcast is: `Queued` → `FanningOut` → `Completed`; or `Scheduled` first;
/// `Cancelled` stops it between chunks; `Failed` when it cannot proceed.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "BroadcastStatus")]
pub enum BroadcastStatusDto {
    Queued,
    Scheduled,
    FanningOut,
    Completed,
    Cancelled,
    Failed,
}

/// A broadcast and its progress.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct BroadcastDto {
    pub id: Uuid,
    pub status: BroadcastStatusDto,
    /// `Users`, `Topics` or `AllUsers`.
    pub audience: String,
    pub topic_ids: Vec<Uuid>,
    pub subject: String,
    #[oai(rename = "type")]
    pub notification_type: NotificationType,
    pub priority: Priority,
    /// Whether recipients are emailed too.
    pub email: bool,
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The audience size when fan-out started.
    pub total_recipients: Option<i32>,
    /// Inbox notifications written so far.
    pub delivered: i32,
    /// Emails accepted by the SMTP server so far.
    pub emailed: i32,
    /// Emails that failed for good.
    pub email_failed: i32,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<Broadcast> for BroadcastDto {
    fn from(b: Broadcast) -> Self {
        Self {
            id: b.id,
            status: b.status.into(),
            audience: b.audience,
            topic_ids: b.topic_ids,
            subject: b.template.subject,
            notification_type: b.template.notification_type.into(),
            priority: b.template.priority.into(),
            email: b.send_email,
            scheduled_for: b.scheduled_for,
            total_recipients: b.total_recipients,
            delivered: b.delivered,
            emailed: b.emailed,
            email_failed: b.email_failed,
            error_message: b.error_message,
            created_at: b.created_at,
            started_at: b.started_at,
            completed_at: b.completed_at,
        }
    }
}

/// A page of broadcasts, newest first.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct BroadcastPage {
    pub data: Vec<BroadcastDto>,
    /// Pass as `before` for the next page; absent on the last one.
    pub next_before: Option<Uuid>,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted: the broadcast is stored and fans out in the background; poll it for progress.
    /// With a repeated `Idempotency-Key`, the first response again.
    #[oai(status = 202)]
    Accepted(
        Json<BroadcastDto>,
        /// Where to follow its progress.
        #[oai(header = "Location")]
        String,
        /// `true` when this is the stored response of an earlier request with the same key.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

pub struct BroadcastsApi;

#[OpenApi(tag = "ApiTags::Broadcasts")]
impl BroadcastsApi {
    /// Send a notification to many users
    ///
    /// Returns at once (202); `herald-fanout` writes one inbox notification per recipient (with
    /// `broadcastId`) in chunks, publishes their real-time events and queues their emails. Each
    /// recipient gets exactly one notification, even if a worker dies and work is redone.
    #[oai(
        path = "/tenant/:tenantId/v1/Broadcasts",
        method = "post",
        operation_id = "createBroadcast"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Any unique string (at most 255 characters) identifying this request across retries.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateBroadcastRequest>,
    ) -> ApiResult<Accepted> {
        let caller = auth.0;
        let draft = BroadcastDraft::from(body.0);
        let checked = draft.clone();
        let new = crate::blocking::run(move || checked.validate(Utc::now())).await?;
        let idempotency = IdempotencyGuard::new(idempotency_key.0, &caller, &draft)?;
        let mut tx = state.db.begin().await?;
        if let Audience::Topics(topics) = &new.audience {
            let unknown = db::broadcasts::unknown_topics(&mut tx, tenant_id.0, topics).await?;
            if !unknown.is_empty() {
                let list: Vec<String> = unknown.iter().map(Uuid::to_string).collect();
                return Err(ApiError::field(
                    "topicIds",
                    format!("No such topics: {}.", list.join(", ")),
                ));
            }
        }
        if let Some(stored) = idempotency.replay::<BroadcastDto>(&mut tx).await? {
            let location = location(tenant_id.0, stored.id);
            return Ok(Accepted::Accepted(
                Json(stored),
                location,
                Some("true".into()),
            ));
        }
        let broadcast = db::broadcasts::insert(&mut tx, tenant_id.0, &new).await?;
        let queue = QueueAt::on_create(broadcast.scheduled_for, Utc::now());
        if let Some(due) = broadcast.scheduled_for {
            let kind = ScheduleKind::Broadcast;
            db::schedules::insert(&mut tx, tenant_id.0, kind, broadcast.id, due, queue).await?;
        }
        let dto = BroadcastDto::from(broadcast);
        idempotency.complete(&mut tx, 202, &dto).await?;
        tx.commit().await?;
        let job = FanOut::start(tenant_id.0, dto.id);
        // A failed enqueue is not the client's problem: the scheduler's sweep picks up broadcasts
        // that make no progress.
        if let Err(error) = state.queues.fan_out_when(job, queue).await {
            tracing::warn!(%error, broadcast_id = %dto.id, "could not queue fan-out; the scheduler will");
        }
        let location = location(tenant_id.0, dto.id);
        Ok(Accepted::Accepted(Json(dto), location, None))
    }

    /// Get a broadcast's progress
    #[oai(
        path = "/tenant/:tenantId/v1/Broadcasts/:id",
        method = "get",
        operation_id = "getBroadcast"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The broadcast id.
        id: Path<Uuid>,
    ) -> ApiResult<Json<BroadcastDto>> {
        let mut conn = state.db.acquire().await?;
        let broadcast = db::broadcasts::get(&mut conn, tenant_id.0, id.0, RowLock::None)
            .await?
            .ok_or_else(not_found)?;
        Ok(Json(broadcast.into()))
    }

    /// List broadcasts
    ///
    /// Newest first, `pageSize` at a time (1–100, default 20); pass `nextBefore` as `before` for
    /// the next page.
    #[oai(
        path = "/tenant/:tenantId/v1/Broadcasts",
        method = "get",
        operation_id = "listBroadcasts"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Only broadcasts created before this one (the previous page's `nextBefore`).
        before: Query<Option<Uuid>>,
        /// Broadcasts per page, 1 to 100 (default 20).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<BroadcastPage>> {
        let page_size = crate::paging::page_size(page_size.0, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let mut conn = state.db.acquire().await?;
        let rows = db::broadcasts::list(&mut conn, tenant_id.0, before.0, page_size + 1).await?;
        let (rows, next_before) = crate::paging::keyset_page(rows, page_size, |b| b.id);
        Ok(Json(BroadcastPage {
            data: rows.into_iter().map(Into::into).collect(),
            next_before,
        }))
    }

    /// Cancel a broadcast
    ///
    /// Stops it before its next chunk: recipients not reached yet get nothing (a scheduled one
    /// creates nothing at all). Cancelling a completed broadcast is 409; cancelling twice is
    /// harmless.
    #[oai(
        path = "/tenant/:tenantId/v1/Broadcasts/:id/cancel",
        method = "post",
        operation_id = "cancelBroadcast"
    )]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The broadcast id.
        id: Path<Uuid>,
    ) -> ApiResult<Json<BroadcastDto>> {
        let mut tx = state.db.begin().await?;
        // Locking the row waits for the chunks in progress (they hold its key-share lock), and
        // every chunk after this finds the broadcast cancelled.
        let broadcast = db::broadcasts::get(&mut tx, tenant_id.0, id.0, RowLock::Update)
            .await?
            .ok_or_else(not_found)?;
        let broadcast = match broadcast.status {
            BroadcastStatus::Cancelled => broadcast,
            status if status.is_final() => {
                return Err(ApiError::conflict(format!(
                    "The broadcast is already {}.",
                    status.as_str()
                )));
            }
            _ => {
                db::schedules::cancel(&mut tx, tenant_id.0, ScheduleKind::Broadcast, id.0).await?;
                db::broadcasts::set_status(
                    &mut tx,
                    tenant_id.0,
                    id.0,
                    BroadcastStatus::Cancelled,
                    None,
                )
                .await?
            }
        };
        tx.commit().await?;
        Ok(Json(broadcast.into()))
    }
}

fn location(tenant_id: Uuid, id: Uuid) -> String {
    format!("/tenant/{tenant_id}/v1/Broadcasts/{id}")
}

fn not_found() -> ApiError {
    ApiError::not_found("No such broadcast.")
}
