//! `Settings`: a tenant's settings for Herald's features, changed by its backend.

use herald_shared::db;
use herald_shared::domain::chat;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::BackendAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tags::ApiTags;

/// How chat content from members is treated.
#[derive(Object, Deserialize, Debug, Clone, Copy)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ChatSettings {
    /// Keep `<img>` elements in chat messages' HTML (default `false`: removed). Each image is
    /// fetched by every other member's client, which tells the sender their IP addresses and
    /// when they read the message. Notifications always keep their images.
    pub remote_images: Option<bool>,
}

impl From<chat::ChatSettings> for ChatSettings {
    fn from(settings: chat::ChatSettings) -> Self {
        Self {
            remote_images: Some(settings.remote_images),
        }
    }
}

pub struct SettingsApi;

#[OpenApi(tag = "ApiTags::Settings")]
impl SettingsApi {
    /// Get the chat settings
    #[oai(
        path = "/tenant/:tenantId/v1/Settings/chat",
        method = "get",
        operation_id = "getChatSettings"
    )]
    async fn get_chat(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
    ) -> ApiResult<Json<ChatSettings>> {
        let mut conn = state.db.acquire().await?;
        let settings = db::chat_settings::get(&mut conn, tenant_id.0).await?;
        Ok(Json(settings.into()))
    }

    /// Replace the chat settings
    ///
    /// Applies to messages sent or edited afterwards; stored messages are not changed.
    #[oai(
        path = "/tenant/:tenantId/v1/Settings/chat",
        method = "put",
        operation_id = "putChatSettings"
    )]
    async fn put_chat(
        &self,
        state: Data<&AppState>,
        _auth: BackendAuth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        body: JsonBody<ChatSettings>,
    ) -> ApiResult<Json<ChatSettings>> {
        let remote_images = body.0.remote_images.ok_or_else(|| {
            ApiError::field("remoteImages", "The remoteImages field is required.")
        })?;
        let settings = chat::ChatSettings { remote_images };
        let mut conn = state.db.acquire().await?;
        db::chat_settings::put(&mut conn, tenant_id.0, &settings).await?;
        Ok(Json(settings.into()))
    }
}
