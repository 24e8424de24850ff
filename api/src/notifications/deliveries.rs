//! `Notifications/{id}/deliveries`: how each send of a notification beyond the inbox went.

use chrono::{DateTime, Utc};
use herald_shared::db::{self, deliveries::OWN_ADDRESS};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::model::ChannelName;
use crate::caller::Auth;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::tags::ApiTags;
use herald_shared::domain::channel::Channel;

/// Where a send is: `Pending` (recorded, not tried yet), `Sending`, `Sent` (the provider
/// accepted it), `Retrying` (a transient failure; it will be tried again), `Failed` (for good:
/// see `lastError`), `Skipped` (nothing to send through: the target was removed, or no
/// provider is set up for the channel).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Sending,
    Sent,
    Retrying,
    Failed,
    Skipped,
}

/// One send of the notification: on one channel, to one target.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Delivery {
    pub channel: ChannelName,
    /// The target sent to; `null` for the notification's own address (its `email`, or the
    /// recipient profile's).
    pub target_id: Option<Uuid>,
    /// The provider that sent it, or that the last attempt went through (`installation` is
    /// Herald's own relay).
    pub provider: Option<String>,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// Why the last attempt failed, or why it was skipped.
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

pub struct NotificationDeliveriesApi;

#[OpenApi(tag = "ApiTags::Notifications")]
impl NotificationDeliveriesApi {
    /// List a notification's deliveries
    ///
    /// Every send beyond the inbox — each email, push, SMS and webhook — with its status,
    /// attempts, last error and the provider it went through. A user token may read only its
    /// own notifications' deliveries.
    #[oai(
        path = "/tenant/:tenantId/v1/Notifications/:id/deliveries",
        method = "get",
        operation_id = "listNotificationDeliveries"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The notification.
        id: Path<Uuid>,
    ) -> ApiResult<Json<Vec<Delivery>>> {
        let notification = super::readable(&state, &auth.0, id.0).await?;
        let mut conn = state.db.acquire().await?;
        let rows =
            db::deliveries::for_notification(&mut conn, tenant_id.0, notification.id).await?;
        Ok(Json(
            rows.into_iter()
                .map(|row| Delivery {
                    channel: Channel::Target(row.channel).into(),
                    target_id: (row.target_id != OWN_ADDRESS).then_some(row.target_id),
                    provider: row.provider,
                    status: status(&row.state),
                    attempts: row.attempts,
                    last_error: row.last_error,
                    sent_at: row.sent_at,
                })
                .collect(),
        ))
    }
}

fn status(state: &str) -> DeliveryStatus {
    match state {
        "Sending" => DeliveryStatus::Sending,
        "Sent" => DeliveryStatus::Sent,
        "Retrying" => DeliveryStatus::Retrying,
        "Failed" => DeliveryStatus::Failed,
        "Skipped" => DeliveryStatus::Skipped,
        _ => DeliveryStatus::Pending,
    }
}
