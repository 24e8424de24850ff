//! Tenant-level notification operations for your backend: erasing and renaming users,
//! analytics, and test emails.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_shared::db::{self, analytics::Period, users::UserRows};
use herald_shared::domain::{
    NotificationDraft, NotificationStatus, NotificationType, Priority, QueueAt, UserId,
};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use super::model::{CreateNotificationRequest, Notification};
use crate::body::JsonBody;
use crate::caller::{Auth, BackendAuth};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tags::ApiTags;

const DEFAULT_FAILED_LIMIT: i64 = 100;
const MAX_FAILED_LIMIT: i64 = 1_000;
/// Recipient of test emails created without a `userId`.
const TEST_EMAIL_USER: &str = "herald-test-email";

/// What erasing a user removed.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserErased {
    pub user_id: String,
    /// Rows deleted, by kind of record.
    pub deleted: BTreeMap<String, u64>,
}

/// A new id for a user.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UpdateUserIdRequest {
    /// The id the user's data moves to; it must not have data of its own yet.
    pub new_user_id: String,
}

/// What renaming a user changed.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserRenamed {
    pub old_user_id: String,
    pub new_user_id: String,
    /// Rows moved to the new id, by kind of record.
    pub updated: BTreeMap<String, u64>,
}

/// Notification statistics for a period.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct NotificationAnalytics {
    pub from_date: Option<DateTime<Utc>>,
    pub to_date: Option<DateTime<Utc>>,
    /// Notifications created in the period.
    pub total: i64,
    /// Counts by status (every status present, zero when none).
    pub by_status: BTreeMap<String, i64>,
    /// Counts by type.
    pub by_type: BTreeMap<String, i64>,
    /// Counts by priority.
    pub by_priority: BTreeMap<String, i64>,
    /// Email outcomes.
    pub email: EmailOutcomes,
}

/// How email delivery went for notifications of the period.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct EmailOutcomes {
    /// Notifications that asked for an email.
    pub requested: i64,
    /// Of those, how many failed for good.
    pub failed: i64,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted: the test notification is stored and queued for email.
    #[oai(status = 202)]
    Accepted(Json<Notification>),
}

pub struct NotificationsAdminApi;

#[OpenApi(tag = "ApiTags::Notifications")]
impl NotificationsAdminApi {
    /// Erase a user
    ///
    /// Deletes everything Herald stores about the user in one transaction (privacy requests):
    /// notifications, their schedules and email records, idempotency records, the recipient
    /// profile, topic subscriptions and broadcast audiences. Returns what was removed.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/users/:userId",
        method = "delete",
        operation_id = "eraseUser"
    )]
    async fn erase_user(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user to erase.
        #[oai(name = "userId")]
        user_id: Path<String>,
    ) -> ApiResult<Json<UserErased>> {
        let user = parse_user(user_id.0, "userId")?;
        let mut tx = state.db.begin().await?;
        let rows = db::users::erase(&mut tx, tenant_id.0, user.as_str()).await?;
        tx.commit().await?;
        Ok(Json(UserErased {
            user_id: user.into_string(),
            deleted: by_kind(&rows),
        }))
    }

    /// Change a user's id
    ///
    /// Moves all of a user's data to a new id (a temporary id becoming permanent, say), in one
    /// transaction. 409 when the new id already has data.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/users/:oldUserId/update-id",
        method = "put",
        operation_id = "renameUser"
    )]
    async fn rename_user(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The user's current id.
        #[oai(name = "oldUserId")]
        old_user_id: Path<String>,
        body: JsonBody<UpdateUserIdRequest>,
    ) -> ApiResult<Json<UserRenamed>> {
        let old = parse_user(old_user_id.0, "oldUserId")?;
        let new = parse_user(body.0.new_user_id, "newUserId")?;
        if old == new {
            return Err(ApiError::field(
                "newUserId",
                "The new user id must differ from the old one.",
            ));
        }
        let mut tx = state.db.begin().await?;
        db::users::lock_rename_target(&mut tx, tenant_id.0, new.as_str()).await?;
        if db::users::has_data(&mut tx, tenant_id.0, new.as_str()).await? {
            return Err(ApiError::conflict(format!(
                "The user id {new} already has data; erase it first or pick another."
            )));
        }
        let rows = db::users::rename(&mut tx, tenant_id.0, old.as_str(), new.as_str())
            .await
            .map_err(|error| match &error {
                // Data written for the new id since the check (a broadcast fanning out to it,
                // say): the transaction rolls back and nothing changes.
                sqlx::Error::Database(db) if db.is_unique_violation() => ApiError::conflict(
                    format!("The user id {new} already has data; erase it first or pick another."),
                ),
                _ => error.into(),
            })?;
        tx.commit().await?;
        Ok(Json(UserRenamed {
            old_user_id: old.into_string(),
            new_user_id: new.into_string(),
            updated: by_kind(&rows),
        }))
    }

    /// Notification statistics
    ///
    /// Counts of the notifications created in the period (both ends inclusive, both optional) by
    /// status, type and priority, and email outcomes.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/analytics/notifications",
        method = "get",
        operation_id = "notificationAnalytics"
    )]
    async fn analytics(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Start of the period (ISO 8601).
        #[oai(name = "fromDate")]
        from_date: Query<Option<DateTime<Utc>>>,
        /// End of the period (ISO 8601).
        #[oai(name = "toDate")]
        to_date: Query<Option<DateTime<Utc>>>,
    ) -> ApiResult<Json<NotificationAnalytics>> {
        let period = period(from_date.0, to_date.0)?;
        let mut conn = state.db.acquire().await?;
        let stats = db::analytics::notification_stats(&mut conn, tenant_id.0, period).await?;
        Ok(Json(NotificationAnalytics {
            from_date: from_date.0,
            to_date: to_date.0,
            total: stats.total,
            by_status: complete(
                NotificationStatus::ALL.iter().map(|s| s.to_string()),
                stats.by_status,
            ),
            by_type: complete(
                NotificationType::ALL.iter().map(|t| t.to_string()),
                stats.by_type,
            ),
            by_priority: complete(
                Priority::ALL.iter().map(|p| p.to_string()),
                stats.by_priority,
            ),
            email: EmailOutcomes {
                requested: stats.email_requested,
                failed: stats.email_failed,
            },
        }))
    }

    /// Failed notifications
    ///
    /// Notifications whose email delivery failed for good, newest first.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/analytics/failed-notifications",
        method = "get",
        operation_id = "failedNotifications"
    )]
    async fn failed(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// How many to return, 1 to 1,000 (default 100).
        limit: Query<Option<i64>>,
    ) -> ApiResult<Json<Vec<Notification>>> {
        let limit = limit.0.unwrap_or(DEFAULT_FAILED_LIMIT);
        if !(1..=MAX_FAILED_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("The limit must be between 1 and {MAX_FAILED_LIMIT}."),
            ));
        }
        let mut conn = state.db.acquire().await?;
        let rows = db::analytics::failed(&mut conn, tenant_id.0, limit).await?;
        Ok(Json(rows.into_iter().map(Into::into).collect()))
    }

    /// Count a user's notifications
    ///
    /// How many notifications the user received in the period (both ends inclusive, both
    /// optional). A user token counts its own; an API key names the user with `userId`.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/analytics/user-notification-count",
        method = "get",
        operation_id = "userNotificationCount"
    )]
    async fn user_count(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Start of the period (ISO 8601).
        #[oai(name = "fromDate")]
        from_date: Query<Option<DateTime<Utc>>>,
        /// End of the period (ISO 8601).
        #[oai(name = "toDate")]
        to_date: Query<Option<DateTime<Utc>>>,
        /// The user (required with an API key; a user token means itself).
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> ApiResult<Json<i64>> {
        let caller = auth.0;
        let user = caller.acting_user(user_id.0, "userId")?;
        let period = period(from_date.0, to_date.0)?;
        let mut conn = state.db.acquire().await?;
        let count = db::analytics::user_count(
            &mut conn,
            tenant_id.0,
            user.as_str(),
            period,
            caller.user().is_some(),
        )
        .await?;
        Ok(Json(count))
    }

    /// Send a test email
    ///
    /// Creates a notification like `POST /Notifications` (same validation) whose email goes to
    /// the server's test address (`HERALD_TEST_EMAIL_TO`) whatever `email` says, so you can check
    /// templates and delivery without reaching real users. `userId` defaults to `herald-test-email`.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/test/send-email",
        method = "post",
        operation_id = "sendTestEmail"
    )]
    async fn send_test_email(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        body: JsonBody<CreateNotificationRequest>,
    ) -> ApiResult<Accepted> {
        let mut draft = NotificationDraft::from(body.0);
        // The address sent is replaced, but a bad one is still the caller's mistake to hear of.
        if let Some(email) = &draft.email {
            herald_shared::domain::email::validate_email(email)
                .map_err(|reason| ApiError::field("email", reason))?;
        }
        draft
            .user_id
            .get_or_insert_with(|| TEST_EMAIL_USER.to_owned());
        draft.email = Some(state.config.email.test_recipient.clone());
        draft.scheduled_for = None;
        let new = crate::blocking::run(move || draft.validate(None, Utc::now())).await?;
        let mut conn = state.db.acquire().await?;
        let notification = db::notifications::insert(&mut conn, tenant_id.0, &new).await?;
        drop(conn);
        let job = herald_shared::jobs::Deliver {
            tenant_id: tenant_id.0,
            notification_id: notification.id,
        };
        super::enqueue(&state, job, QueueAt::Now).await;
        Ok(Accepted::Accepted(Json(notification.into())))
    }
}

fn parse_user(value: String, field: &str) -> Result<UserId, ApiError> {
    UserId::parse(value).map_err(|e| ApiError::field(field, e.to_string()))
}

fn period(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<Period, ApiError> {
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::field(
            "toDate",
            "The toDate must not be earlier than fromDate.",
        ));
    }
    Ok(Period { from, to })
}

/// Every expected key, zero when absent, so dashboards need no special cases.
fn complete(
    keys: impl Iterator<Item = String>,
    counts: BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    let mut all: BTreeMap<String, i64> = keys.map(|k| (k, 0)).collect();
    all.extend(counts);
    all
}

fn by_kind(rows: &UserRows) -> BTreeMap<String, u64> {
    BTreeMap::from([
        ("notifications".to_owned(), rows.notifications),
        ("schedules".to_owned(), rows.schedules),
        ("deliveries".to_owned(), rows.deliveries),
        ("targets".to_owned(), rows.targets),
        ("idempotencyKeys".to_owned(), rows.idempotency_keys),
        ("recipients".to_owned(), rows.recipients),
        ("topicSubscriptions".to_owned(), rows.topic_subscriptions),
        ("broadcastRecipients".to_owned(), rows.broadcast_recipients),
        ("chatMemberships".to_owned(), rows.chat_memberships),
        ("chatMessages".to_owned(), rows.chat_messages),
    ])
}
