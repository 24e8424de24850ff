//! `Chat`: direct and group chats, their members, messages and receipts (seeds 000 and 003).
//!
//! Who acts: a user token acts as its user. An API key acts as the user named by the
//! `Of-User-Id` header, or, without it, as the tenant itself (administration: reading any chat,
//! deleting chats, retention). Only members see a chat: for anyone else it does not exist (404).

pub mod broadcast;
pub mod members;
pub mod messages;
pub mod model;

use herald_shared::db::{self, chats::Access};
use herald_shared::domain::UserId;
use herald_shared::domain::chat::{ChatDraft, ChatUpdate, MemberRole};
use herald_shared::domain::html::Images;
use herald_shared::events::{EventType, MessagingEvent};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::body::JsonBody;
use crate::caller::{Auth, Caller};
use crate::error::{ApiError, ApiResult};
use crate::events::publish_after_commit;
use crate::state::AppState;
use crate::tags::ApiTags;
use model::{Chat, ChatPage, CreateChatRequest, UpdateChatRequest};

/// The header an API key names the acting user with (seed 003).
pub const OF_USER_ID: &str = "Of-User-Id";
const DEFAULT_PAGE_SIZE: i64 = 20;
const MAX_PAGE_SIZE: i64 = 100;

#[derive(ApiResponse)]
pub enum ChatCreated {
    /// Created.
    #[oai(status = 201)]
    Created(
        Json<Chat>,
        /// Where the chat can be read.
        #[oai(header = "Location")]
        String,
    ),
    /// The direct chat between these two users already existed: here it is.
    #[oai(status = 200)]
    Existing(
        Json<Chat>,
        /// Where the chat can be read.
        #[oai(header = "Location")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

pub struct ChatApi;

#[OpenApi(tag = "ApiTags::Chat")]
impl ChatApi {
    /// Create a chat
    ///
    /// A `Group` chat with a name and members (the acting user becomes its owner), or a `Direct`
    /// chat between the acting user and one other user. A direct chat is unique per pair:
    /// creating it again returns the existing one (200). Every member's devices get
    /// `ChatMemberAdded`.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat",
        method = "post",
        operation_id = "createChat"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// With an API key: the user to act as (they become the owner). Without it, the chat
        /// belongs to the listed members only.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        body: JsonBody<CreateChatRequest>,
    ) -> ApiResult<ChatCreated> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let new = ChatDraft::from(body.0).validate(actor.as_ref())?;
        let max = state.config.chat.max_members;
        if new.members.len() > max {
            return Err(ApiError::field(
                "memberIds",
                format!("A chat has at most {max} members."),
            ));
        }
        let mut tx = state.db.begin().await?;
        let (chat_id, created) = match db::chats::insert(&mut tx, tenant_id.0, &new).await? {
            Some(id) => (id, true),
            None => {
                let key = new.direct_key.as_deref().unwrap_or_default();
                let existing = db::chats::find_direct(&mut tx, tenant_id.0, key).await?;
                (existing.ok_or_else(not_found)?, false)
            }
        };
        let view = db::chats::view(&mut tx, tenant_id.0, chat_id, as_str(&actor))
            .await?
            .ok_or_else(not_found)?;
        tx.commit().await?;
        let location = format!("/tenant/{}/v1/Chat/{chat_id}", tenant_id.0);
        if !created {
            return Ok(ChatCreated::Existing(Json(view.into()), location));
        }
        let events: Vec<_> = new
            .members
            .iter()
            .map(|member| {
                (
                    member.as_str(),
                    event_for(EventType::ChatMemberAdded, member, chat_id),
                )
            })
            .collect();
        publish_after_commit(&state, tenant_id.0, &events).await;
        Ok(ChatCreated::Created(Json(view.into()), location))
    }

    /// List my chats
    ///
    /// The acting user's chats, most recent activity first, each with its newest message and
    /// the user's unread count. `pageSize` above 100 is refused (400), not clamped.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat",
        method = "get",
        operation_id = "listChats"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Required with an API key: whose chats to list.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        /// Page to return, from 1 (default 1).
        #[oai(name = "pageNumber")]
        page_number: Query<Option<i64>>,
        /// Chats per page, 1 to 100 (default 20).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<ChatPage>> {
        let caller = auth.0;
        let user = caller.acting_user(of_user_id.0, OF_USER_ID)?;
        let page_size = crate::paging::page_size(page_size.0, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let page_number = page_number.0.unwrap_or(1);
        if page_number < 1 {
            return Err(ApiError::field(
                "pageNumber",
                "The pageNumber must be 1 or more.",
            ));
        }
        let offset = (page_number - 1).saturating_mul(page_size);
        let mut conn = state.db.acquire().await?;
        let (chats, total) =
            db::chats::list_for_user(&mut conn, tenant_id.0, user.as_str(), page_size, offset)
                .await?;
        let total_pages = (total + page_size - 1) / page_size;
        Ok(Json(ChatPage {
            data: chats.into_iter().map(Into::into).collect(),
            page_number,
            page_size,
            total_count: total,
            total_pages,
            has_previous_page: page_number > 1,
            has_next_page: page_number < total_pages,
        }))
    }

    /// Get a chat
    ///
    /// With the acting user's role and unread count, and the newest message.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId",
        method = "get",
        operation_id = "getChat"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// With an API key: the user to act as (who must be a member).
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
    ) -> ApiResult<Json<Chat>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let mut conn = state.db.acquire().await?;
        let view = db::chats::view(&mut conn, tenant_id.0, chat_id.0, as_str(&actor))
            .await?
            .ok_or_else(not_found)?;
        Ok(Json(view.into()))
    }

    /// Rename a chat or change its metadata
    ///
    /// For the chat's owners and admins, and your backend.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId",
        method = "put",
        operation_id = "updateChat"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// With an API key: the user to act as.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        body: JsonBody<UpdateChatRequest>,
    ) -> ApiResult<Json<Chat>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let update = ChatUpdate {
            name: body.0.name,
            metadata: body.0.metadata,
        }
        .validate()?;
        let mut tx = state.db.begin().await?;
        let access = chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        require(
            access.role.is_none_or(MemberRole::manages_members),
            "Only the chat's owners and admins can change it.",
        )?;
        db::chats::update(
            &mut tx,
            tenant_id.0,
            chat_id.0,
            update.name.as_deref(),
            update.metadata.as_ref(),
        )
        .await?;
        let view = db::chats::view(&mut tx, tenant_id.0, chat_id.0, as_str(&actor))
            .await?
            .ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(Json(view.into()))
    }

    /// Delete a chat
    ///
    /// With all its messages and members. For the chat's owner and your backend (direct chats
    /// have no owner: only your backend deletes them). Every member's devices get
    /// `ChatMemberRemoved` with their own user id.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId",
        method = "delete",
        operation_id = "deleteChat"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// With an API key: the user to act as.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
    ) -> ApiResult<Deleted> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let mut tx = state.db.begin().await?;
        db::chats::lock_for_delete(&mut tx, tenant_id.0, chat_id.0).await?;
        let access = chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        require(
            access.role.is_none_or(|role| role == MemberRole::Owner),
            "Only the chat's owner can delete it.",
        )?;
        let members = db::chats::delete(&mut tx, tenant_id.0, chat_id.0).await?;
        tx.commit().await?;
        let events: Vec<_> = members
            .iter()
            .map(|member| {
                (
                    member.as_str(),
                    event_for(EventType::ChatMemberRemoved, member, chat_id.0),
                )
            })
            .collect();
        publish_after_commit(&state, tenant_id.0, &events).await;
        Ok(Deleted::NoContent)
    }
}

/// Who acts: `Some(user)` for a user token or an API key with `Of-User-Id`; `None` for an API
/// key acting as the tenant.
pub(crate) fn actor(caller: &Caller, of_user_id: Option<String>) -> ApiResult<Option<UserId>> {
    match (caller, of_user_id) {
        (Caller::Backend { .. }, None) => Ok(None),
        (caller, requested) => caller.acting_user(requested, OF_USER_ID).map(Some),
    }
}

pub(crate) fn as_str(actor: &Option<UserId>) -> Option<&str> {
    actor.as_ref().map(UserId::as_str)
}

/// The chat's type and the actor's role, locking the chat against deletion until the
/// transaction ends; 404 when the chat does not exist or the actor is not a member.
pub(crate) async fn chat_access(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    actor: &Option<UserId>,
) -> ApiResult<Access> {
    db::chats::access(conn, tenant_id, chat_id, as_str(actor))
        .await?
        .ok_or_else(not_found)
}

/// 403 with `detail` unless `allowed`.
/// How the tenant wants chat HTML sanitized (`PUT /Settings/chat`), read before any
/// transaction so none is open while the content is checked.
pub(crate) async fn chat_images(state: &AppState, tenant_id: Uuid) -> ApiResult<Images> {
    let mut conn = state.db.acquire().await?;
    Ok(db::chat_settings::get(&mut conn, tenant_id).await?.images())
}

pub(crate) fn require(allowed: bool, detail: &str) -> ApiResult<()> {
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(detail))
    }
}

/// A chat event about `id` (a member or a message) now.
pub(crate) fn event_for(kind: EventType, id: impl ToString, chat_id: Uuid) -> MessagingEvent {
    MessagingEvent::chat(kind, id, chat_id, chrono::Utc::now())
}

/// The same event to every user in `members`.
pub(crate) async fn publish_to_all(
    state: &AppState,
    tenant_id: Uuid,
    members: &[String],
    event: MessagingEvent,
) {
    let events: Vec<_> = members
        .iter()
        .map(|m| (m.as_str(), event.clone()))
        .collect();
    publish_after_commit(state, tenant_id, &events).await;
}

/// Unknown chats, other tenants' chats and chats the actor is not in look the same.
pub(crate) fn not_found() -> ApiError {
    ApiError::not_found("No such chat.")
}
