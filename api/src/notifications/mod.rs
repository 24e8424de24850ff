//! `Notifications`: a user's inbox (seeds 001 and 002).

pub mod admin;
pub mod deliveries;
mod list;
pub mod model;

use crate::idempotency::IdempotencyGuard;
use chrono::Utc;
use herald_shared::db::{self, schedules::ScheduleKind};
use herald_shared::domain::{self, NotificationDraft, NotificationStatus, QueueAt};
use herald_shared::events::{EventType, MessagingEvent};
use herald_shared::jobs::Deliver;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::{Auth, BackendAuth, Caller};
use crate::error::{ApiError, ApiResult};
use crate::events::publish_after_commit;
use crate::state::AppState;
use crate::tags::ApiTags;
use model::{
    ContentFormat, CreateNotificationRequest, Notification, NotificationContent, ReadAllResult,
    UnreadCount,
};

#[derive(ApiResponse)]
pub enum Created {
    /// Created. With a repeated `Idempotency-Key`, the first response again (and nothing new
    /// is created).
    #[oai(status = 201)]
    Created(
        Json<Notification>,
        /// Where the notification can be read.
        #[oai(header = "Location")]
        String,
        /// `true` when this is the stored response of an earlier request with the same key.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

pub struct NotificationsApi;

#[OpenApi(tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// Create a notification
    ///
    /// Stores the notification and delivers it to the user's inbox and live connections (and by
    /// email when `email` is set). With `scheduledFor` in the future it waits as `Scheduled`.
    /// With a user token, `email` must be the address in the user's own recipient profile
    /// (`PUT /Users/{userId}`); any other address is 403. `type` defaults to `SystemAnnouncement`.
    /// Send an `Idempotency-Key` header to make retries safe: the same key within 24 hours returns
    /// the first response and creates nothing; the same key with a different body is 422.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications",
        method = "post",
        operation_id = "createNotification"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Any unique string (at most 255 characters) identifying this request across retries.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateNotificationRequest>,
    ) -> ApiResult<Created> {
        let caller = auth.0;
        let draft = NotificationDraft::from(body.0);
        if let (Some(own), Some(requested)) = (caller.user(), &draft.user_id)
            && own.as_str() != requested
        {
            return Err(ApiError::forbidden(
                "A user token may only create notifications for its own user.",
            ));
        }
        let (user, checked) = (caller.user().cloned(), draft.clone());
        let new = crate::blocking::run(move || checked.validate(user.as_ref(), Utc::now())).await?;
        if let (Some(own), Some(email)) = (caller.user(), &new.email) {
            check_own_address(&state, tenant_id.0, own.as_str(), email).await?;
        }
        let idempotency = IdempotencyGuard::new(idempotency_key.0, &caller, &draft)?;

        let mut tx = state.db.begin().await?;
        if let Some(stored) = idempotency.replay::<Notification>(&mut tx).await? {
            let location = location(&stored);
            return Ok(Created::Created(
                Json(stored),
                location,
                Some("true".into()),
            ));
        }
        let notification = db::notifications::insert(&mut tx, tenant_id.0, &new).await?;
        let queue = QueueAt::on_create(notification.scheduled_for, Utc::now());
        if let Some(due) = notification.scheduled_for {
            let kind = ScheduleKind::Notification;
            db::schedules::insert(&mut tx, tenant_id.0, kind, notification.id, due, queue).await?;
        }
        let job = Deliver {
            tenant_id: tenant_id.0,
            notification_id: notification.id,
        };
        let dto = Notification::from(notification);
        idempotency.complete(&mut tx, 201, &dto).await?;
        tx.commit().await?;
        enqueue(&state, job, queue).await;
        let location = location(&dto);
        Ok(Created::Created(Json(dto), location, None))
    }

    /// List notifications
    ///
    /// Newest first by default. With a user token: that user's inbox (scheduled and cancelled
    /// notifications are not shown). With an API key: the whole tenant, or one user with
    /// `userId`. `pageSize` above 50 is refused (400), not clamped.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications",
        method = "get",
        operation_id = "listNotifications"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Page to return, from 1 (default 1).
        #[oai(name = "pageNumber")]
        page_number: Query<Option<i64>>,
        /// Notifications per page, 1 to 50 (default 10).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
        /// Only notifications created after this time (ISO 8601) — use it to catch up after a reconnect.
        #[oai(name = "createdAfter")]
        created_after: Query<Option<chrono::DateTime<Utc>>>,
        /// Only notifications created before this time (ISO 8601).
        #[oai(name = "createdBefore")]
        created_before: Query<Option<chrono::DateTime<Utc>>>,
        /// Only notifications in this status.
        status: Query<Option<model::NotificationStatus>>,
        /// Only notifications of this type.
        #[oai(name = "type")]
        notification_type: Query<Option<model::NotificationType>>,
        /// Only notifications of this priority.
        priority: Query<Option<model::Priority>>,
        /// Only unread notifications.
        #[oai(name = "unreadOnly")]
        unread_only: Query<Option<bool>>,
        /// Only notifications of this broadcast.
        #[oai(name = "broadcastId")]
        broadcast_id: Query<Option<Uuid>>,
        /// Text to find in the subject or message (case-insensitive, at most 200 characters).
        filter: Query<Option<String>>,
        /// `createdAt` (default), `priority` or `subject`.
        #[oai(name = "sortField")]
        sort_field: Query<Option<String>>,
        /// `desc` (default) or `asc`.
        #[oai(name = "sortOrder")]
        sort_order: Query<Option<String>>,
        /// One user's notifications (API key). A user token always lists its own.
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> ApiResult<Json<model::NotificationPage>> {
        let caller = auth.0;
        let user = match (&caller, user_id.0) {
            (Caller::Backend { .. }, None) => None,
            (caller, requested) => Some(caller.acting_user(requested, "userId")?.into_string()),
        };
        let params = list::ListParams {
            page_number: page_number.0,
            page_size: page_size.0,
            created_after: created_after.0,
            created_before: created_before.0,
            status: status.0,
            notification_type: notification_type.0,
            priority: priority.0,
            unread_only: unread_only.0,
            broadcast_id: broadcast_id.0,
            filter: filter.0,
            sort_field: sort_field.0,
            sort_order: sort_order.0,
        };
        let request = list::validate(params, user, caller.user().is_some())?;
        let mut conn = state.db.acquire().await?;
        let (rows, total) = db::notifications::list(
            &mut conn,
            tenant_id.0,
            &request.filter,
            request.page_size,
            request.offset(),
        )
        .await?;
        Ok(Json(
            request.page(rows.into_iter().map(Into::into).collect(), total),
        ))
    }

    /// Get a notification
    ///
    /// A user token may read only its own user's notifications (403 otherwise).
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/:id",
        method = "get",
        operation_id = "getNotification"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        _tenant_id: Path<Uuid>,
        /// The notification id.
        id: Path<Uuid>,
    ) -> ApiResult<Json<Notification>> {
        let caller = auth.0;
        let notification = readable(&state, &caller, id.0).await?;
        Ok(Json(notification.into()))
    }

    /// Get a notification's content in one form
    ///
    /// `html` (sanitized HTML, or the plain message as HTML), `text` (the plain message, or a
    /// text rendering of the HTML), `summary` (the summary, or the start of the text), or `full`
    /// (all three).
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/:id/content",
        method = "get",
        operation_id = "getNotificationContent"
    )]
    async fn content(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        _tenant_id: Path<Uuid>,
        /// The notification id.
        id: Path<Uuid>,
        /// `html`, `text`, `summary` or `full` (default).
        format: Query<Option<ContentFormat>>,
    ) -> ApiResult<Json<NotificationContent>> {
        let caller = auth.0;
        let notification = readable(&state, &caller, id.0).await?;
        Ok(Json(render_content(
            notification,
            format.0.unwrap_or_default(),
        )))
    }

    /// Mark a notification read
    ///
    /// Sets `status` to `Read` and `readAt`, and tells the user's other devices
    /// (`NotificationRead`). 404 for another user's notification.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/:id/read",
        method = "put",
        operation_id = "markNotificationRead"
    )]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        _tenant_id: Path<Uuid>,
        /// The notification id.
        id: Path<Uuid>,
    ) -> ApiResult<Json<Notification>> {
        let caller = auth.0;
        set_read(&state, &caller, id.0, true).await.map(Json)
    }

    /// Mark a notification unread
    ///
    /// Clears `readAt` and returns `status` to `Sent`, and tells the user's other devices
    /// (`NotificationUnread`). 404 for another user's notification.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/:id/unread",
        method = "put",
        operation_id = "markNotificationUnread"
    )]
    async fn unread(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        _tenant_id: Path<Uuid>,
        /// The notification id.
        id: Path<Uuid>,
    ) -> ApiResult<Json<Notification>> {
        let caller = auth.0;
        set_read(&state, &caller, id.0, false).await.map(Json)
    }

    /// Mark all notifications read
    ///
    /// Marks every unread notification of the user read, or only those created before `before`.
    /// The user's devices get one `NotificationsReadAll` event (`id` = the user id, `createdAt` =
    /// when it happened) for the whole operation, not one per notification: refresh the inbox.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/read-all",
        method = "put",
        operation_id = "markAllNotificationsRead"
    )]
    async fn read_all(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Only notifications created before this time (ISO 8601).
        before: Query<Option<chrono::DateTime<Utc>>>,
        /// The user (required with an API key; a user token means itself).
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> ApiResult<Json<ReadAllResult>> {
        let caller = auth.0;
        let user = caller.acting_user(user_id.0, "userId")?;
        let mut conn = state.db.acquire().await?;
        let changed =
            db::notifications::read_all(&mut conn, tenant_id.0, user.as_str(), before.0).await?;
        if !changed.is_empty() {
            let event =
                MessagingEvent::inbox(EventType::NotificationsReadAll, user.as_str(), Utc::now());
            publish_after_commit(&state, tenant_id.0, &[(&user, event)]).await;
        }
        Ok(Json(ReadAllResult {
            updated: changed.len() as i64,
        }))
    }

    /// Count unread notifications
    ///
    /// The badge count: unread notifications in the user's inbox.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/unread-count",
        method = "get",
        operation_id = "countUnreadNotifications"
    )]
    async fn unread_count(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user (required with an API key; a user token means itself).
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> ApiResult<Json<UnreadCount>> {
        let caller = auth.0;
        let user = caller.acting_user(user_id.0, "userId")?;
        let mut conn = state.db.acquire().await?;
        let count = db::notifications::unread_count(&mut conn, tenant_id.0, user.as_str()).await?;
        Ok(Json(UnreadCount {
            user_id: user.into_string(),
            unread_count: count,
        }))
    }

    /// Delete a notification
    ///
    /// Removes it from the inbox and tells the user's devices (`NotificationDeleted`). 404 for
    /// another user's notification.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/:id",
        method = "delete",
        operation_id = "deleteNotification"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The notification id.
        id: Path<Uuid>,
    ) -> ApiResult<Deleted> {
        let caller = auth.0;
        let mut tx = state.db.begin().await?;
        let notification = changeable(&mut tx, &caller, id.0).await?;
        db::notifications::delete(&mut tx, tenant_id.0, id.0).await?;
        tx.commit().await?;
        let event = MessagingEvent::notification(EventType::NotificationDeleted, id.0, Utc::now());
        publish_after_commit(&state, tenant_id.0, &[(notification.user_id, event)]).await;
        Ok(Deleted::NoContent)
    }

    /// Cancel a scheduled notification
    ///
    /// A `Scheduled` notification becomes `Cancelled` and is never delivered. Cancelling one that
    /// was already delivered is 409; cancelling twice is harmless.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/:id/cancel",
        method = "post",
        operation_id = "cancelNotification"
    )]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The notification id.
        id: Path<Uuid>,
    ) -> ApiResult<Json<Notification>> {
        let mut tx = state.db.begin().await?;
        let notification = db::notifications::get(&mut tx, tenant_id.0, id.0, true)
            .await?
            .ok_or_else(not_found)?;
        let notification = match notification.status {
            NotificationStatus::Cancelled => notification,
            NotificationStatus::Scheduled => {
                db::schedules::cancel(&mut tx, tenant_id.0, ScheduleKind::Notification, id.0)
                    .await?;
                db::notifications::mark_cancelled(&mut tx, tenant_id.0, id.0).await?
            }
            other => {
                return Err(ApiError::conflict(format!(
                    "Only scheduled notifications can be cancelled; this one is {other}."
                )));
            }
        };
        tx.commit().await?;
        Ok(Json(notification.into()))
    }
}

/// Queues delivery after commit. A failure is logged, not returned: the notification is safe in
/// PostgreSQL and the scheduler's sweep queues it later.
pub(crate) async fn enqueue(state: &AppState, job: Deliver, queue: QueueAt) {
    let notification_id = job.notification_id;
    if let Err(error) = state.queues.deliver_when(job, queue).await {
        tracing::warn!(%error, %notification_id, "could not queue delivery; the scheduler will");
    }
}

/// A user token may email only the address in its own recipient profile: otherwise any signed-in
/// user could mail anyone from the tenant's sender (an open relay). API keys may email anyone.
async fn check_own_address(
    state: &AppState,
    tenant_id: Uuid,
    user_id: &str,
    email: &str,
) -> ApiResult<()> {
    let mut conn = state.db.acquire().await?;
    let profile = db::recipients::get(&mut conn, tenant_id, user_id).await?;
    match profile.and_then(|profile| profile.email) {
        Some(own) if own.trim().eq_ignore_ascii_case(email) => Ok(()),
        _ => Err(ApiError::forbidden(
            "A user token may only email the address in its own recipient profile \
             (PUT /Users/{userId}).",
        )),
    }
}

fn location(notification: &Notification) -> String {
    format!(
        "/tenant/{}/v1/Notifications/{}",
        notification.tenant_id, notification.id
    )
}

fn not_found() -> ApiError {
    ApiError::not_found("No such notification.")
}

/// A notification the caller may read: 403 for another user's (seed 001), 404 when absent or
/// not yet delivered.
pub(crate) async fn readable(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<domain::Notification> {
    let mut conn = state.db.acquire().await?;
    let notification = db::notifications::get(&mut conn, caller.tenant_id(), id, false)
        .await?
        .ok_or_else(not_found)?;
    match caller.user() {
        Some(user) if user.as_str() != notification.user_id => Err(ApiError::forbidden(
            "This notification belongs to another user.",
        )),
        Some(_) if !notification.visible_to_user() => Err(not_found()),
        _ => Ok(notification),
    }
}

/// A notification the caller may change, locked: another user's is 404 (seed 002).
async fn changeable(
    conn: &mut sqlx::PgConnection,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<domain::Notification> {
    let notification = db::notifications::get(conn, caller.tenant_id(), id, true)
        .await?
        .ok_or_else(not_found)?;
    match caller.user() {
        Some(user) if user.as_str() != notification.user_id || !notification.visible_to_user() => {
            Err(not_found())
        }
        _ => Ok(notification),
    }
}

async fn set_read(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    read: bool,
) -> ApiResult<Notification> {
    let mut tx = state.db.begin().await?;
    let current = changeable(&mut tx, caller, id).await?;
    if !current.visible_to_user() {
        return Err(ApiError::conflict(format!(
            "The notification is {} and not in the inbox yet.",
            current.status
        )));
    }
    if current.read_at.is_some() == read {
        return Ok(current.into());
    }
    let updated = db::notifications::set_read(&mut tx, caller.tenant_id(), id, read).await?;
    tx.commit().await?;
    let (kind, at) = if read {
        (
            EventType::NotificationRead,
            updated.read_at.unwrap_or_else(Utc::now),
        )
    } else {
        (EventType::NotificationUnread, Utc::now())
    };
    publish_after_commit(
        state,
        caller.tenant_id(),
        &[(
            updated.user_id.as_str(),
            MessagingEvent::notification(kind, id, at),
        )],
    )
    .await;
    Ok(updated.into())
}

fn render_content(
    notification: domain::Notification,
    format: ContentFormat,
) -> NotificationContent {
    let want = |f: ContentFormat| format == f || format == ContentFormat::Full;
    let html = want(ContentFormat::Html).then(|| notification.html());
    let summary = want(ContentFormat::Summary).then(|| notification.summary_or_derived());
    NotificationContent {
        id: notification.id,
        format,
        subject: notification.subject,
        html,
        text: want(ContentFormat::Text).then_some(notification.message),
        summary,
    }
}
