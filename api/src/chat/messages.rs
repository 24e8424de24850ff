//! `Chat/{chatId}/messages`: sending, history, receipts, deletion and retention.

use crate::idempotency::IdempotencyGuard;
use chrono::{Duration, Utc};
use herald_shared::db;
use herald_shared::db::commit_window::CommitClock;
use herald_shared::domain::UserId;
use herald_shared::domain::chat::{
    ChatMessage as StoredMessage, HistoryCursor, MemberRole, MessageDraft,
};
use herald_shared::events::{EventType, MessagingEvent};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::{
    ChatMessage, MemberReceipt, MessageInfo, MessagePage, ReadRequest, ReadState, ReceiptStatus,
    RetentionResult, SendMessageRequest,
};
use super::{
    Deleted, OF_USER_ID, actor, chat_access, chat_images, event_for, publish_to_all, require,
};
use crate::body::JsonBody;
use crate::caller::Auth;
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::AppState;
use crate::tags::ApiTags;

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 100;
/// Members per page of a message's info: like the member list.
const INFO_DEFAULT_PAGE_SIZE: i64 = 100;
const INFO_MAX_PAGE_SIZE: i64 = 1_000;
/// Longest retention period accepted (100 years): beyond it nothing could be old enough.
const MAX_RETENTION_DAYS: i64 = 36_500;

#[derive(ApiResponse)]
pub enum Sent {
    /// Sent. With a repeated `Idempotency-Key`, the first response again (and nothing new is
    /// sent).
    #[oai(status = 201)]
    Created(
        Json<ChatMessage>,
        /// Where the message can be read.
        #[oai(header = "Location")]
        String,
        /// `true` when this is the stored response of an earlier request with the same key.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

pub struct ChatMessagesApi;

#[OpenApi(tag = "ApiTags::Chat")]
impl ChatMessagesApi {
    /// Send a message
    ///
    /// Stores the message and delivers `ChatMessage` (`id` = message id, `parentId` = chat id)
    /// to every member's connected devices, the sender's other devices included. Send an
    /// `Idempotency-Key` header to make retries safe.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/messages",
        method = "post",
        operation_id = "sendChatMessage"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// Required with an API key: the sender.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        /// Any unique string (at most 255 characters) identifying this request across retries.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<SendMessageRequest>,
    ) -> ApiResult<Sent> {
        let caller = auth.0;
        let sender = caller.acting_user(of_user_id.0, OF_USER_ID)?;
        let draft = MessageDraft::from(body.0);
        let images = chat_images(&state, tenant_id.0).await?;
        let checked = draft.clone();
        let content = crate::blocking::run(move || checked.validate(images)).await?;
        // The chat and sender are part of the request: one key cannot replay into another chat.
        let fingerprinted = (chat_id.0, sender.as_str(), &draft);
        let idempotency = IdempotencyGuard::new(idempotency_key.0, &caller, &fingerprinted)?;
        // The message's time is stamped inside: see `commit_window` for why it must commit soon.
        let clock = CommitClock::start();
        let mut tx = state.db.begin().await?;
        chat_access(&mut tx, tenant_id.0, chat_id.0, &Some(sender.clone())).await?;
        if let Some(stored) = idempotency.replay::<ChatMessage>(&mut tx).await? {
            let location = location(tenant_id.0, &stored);
            return Ok(Sent::Created(Json(stored), location, Some("true".into())));
        }
        let message =
            db::chat_messages::insert(&mut tx, tenant_id.0, chat_id.0, sender.as_str(), &content)
                .await?;
        let members = db::chats::member_ids(&mut tx, tenant_id.0, chat_id.0).await?;
        let dto = ChatMessage::from(message);
        idempotency.complete(&mut tx, 201, &dto).await?;
        clock.commit(tx).await?;
        let event = MessagingEvent::chat(EventType::ChatMessage, dto.id, chat_id.0, dto.created_at);
        publish_to_all(&state, tenant_id.0, &members, event).await;
        let location = location(tenant_id.0, &dto);
        Ok(Sent::Created(Json(dto), location, None))
    }

    /// Read the history
    ///
    /// Newest first, a page at a time. Without cursors: the newest messages. With `before` (a
    /// message id or an ISO 8601 time): older ones, pass `nextBefore` to go on. With `after`:
    /// the messages right after it, pass `nextAfter` to go on. Pages stay exact while new
    /// messages arrive. Fetching marks the messages delivered to the acting user.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/messages",
        method = "get",
        operation_id = "listChatMessages"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn history(
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
        /// Only messages older than this message id or ISO 8601 time.
        before: Query<Option<String>>,
        /// Only messages newer than this message id or ISO 8601 time.
        after: Query<Option<String>>,
        /// Messages per page, 1 to 100 (default 50).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<MessagePage>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let page_size = paging::page_size(page_size.0, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let parse = |field: &str, value: Option<String>| {
            value
                .map(|v| HistoryCursor::parse(field, &v))
                .transpose()
                .map_err(ApiError::validation)
        };
        let before = parse("before", before.0)?;
        let after = parse("after", after.0)?;
        // Forward paging only with `after` alone; otherwise walk back from `before` (or now).
        let forward = after.is_some() && before.is_none();
        let mut tx = state.db.begin().await?;
        chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        let mut messages = db::chat_messages::history(
            &mut tx,
            tenant_id.0,
            chat_id.0,
            after.map(HistoryCursor::lower_bound),
            before.map(HistoryCursor::upper_bound),
            forward,
            page_size + 1,
        )
        .await?;
        let has_more = messages.len() as i64 > page_size;
        if has_more {
            // The extra row is the oldest (walking back) or the newest (walking forward).
            if forward {
                messages.remove(0);
            } else {
                messages.pop();
            }
        }
        if let (Some(user), Some(newest)) = (&actor, messages.first()) {
            db::chat_receipts::advance(
                &mut tx,
                tenant_id.0,
                chat_id.0,
                user.as_str(),
                newest.id,
                false,
            )
            .await?;
        }
        tx.commit().await?;
        let next_before = (has_more && !forward)
            .then(|| messages.last().map(|m| m.id))
            .flatten();
        let next_after = (has_more && forward)
            .then(|| messages.first().map(|m| m.id))
            .flatten();
        Ok(Json(MessagePage {
            data: messages.into_iter().map(Into::into).collect(),
            has_more,
            next_before,
            next_after,
        }))
    }

    /// Get a message
    ///
    /// The path seed 000's client fetches for a `ChatMessage` event (`parentId`, `id`). Marks
    /// the message delivered to the acting user.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/messages/:messageId",
        method = "get",
        operation_id = "getChatMessage"
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
        /// The message id.
        #[oai(name = "messageId")]
        message_id: Path<Uuid>,
        /// With an API key: the user to act as (who must be a member).
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
    ) -> ApiResult<Json<ChatMessage>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let mut tx = state.db.begin().await?;
        let message = member_message(&mut tx, tenant_id.0, chat_id.0, message_id.0, &actor).await?;
        if let Some(user) = &actor {
            db::chat_receipts::advance(
                &mut tx,
                tenant_id.0,
                chat_id.0,
                user.as_str(),
                message.id,
                false,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Json(message.into()))
    }

    /// Edit a message
    ///
    /// For its sender only: replaces the content (same rules as sending) and sets `editedAt`.
    /// Members' devices get `ChatMessageEdited`.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/messages/:messageId",
        method = "put",
        operation_id = "editChatMessage"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn edit(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// The message id.
        #[oai(name = "messageId")]
        message_id: Path<Uuid>,
        /// Required with an API key: the sender.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        body: JsonBody<SendMessageRequest>,
    ) -> ApiResult<Json<ChatMessage>> {
        let caller = auth.0;
        let editor = caller.acting_user(of_user_id.0, OF_USER_ID)?;
        let draft = MessageDraft::from(body.0);
        let images = chat_images(&state, tenant_id.0).await?;
        let content = crate::blocking::run(move || draft.validate(images)).await?;
        let mut tx = state.db.begin().await?;
        chat_access(&mut tx, tenant_id.0, chat_id.0, &Some(editor.clone())).await?;
        let sender =
            db::chat_messages::sender_for_update(&mut tx, tenant_id.0, chat_id.0, message_id.0)
                .await?
                .ok_or_else(message_not_found)?;
        require(
            sender == editor.as_str(),
            "Only the sender can edit a message.",
        )?;
        let edited =
            db::chat_messages::edit(&mut tx, tenant_id.0, chat_id.0, message_id.0, &content)
                .await?
                .ok_or_else(message_not_found)?;
        let members = db::chats::member_ids(&mut tx, tenant_id.0, chat_id.0).await?;
        tx.commit().await?;
        let event = event_for(EventType::ChatMessageEdited, message_id.0, chat_id.0);
        publish_to_all(&state, tenant_id.0, &members, event).await;
        Ok(Json(edited.into()))
    }

    /// Delete a message
    ///
    /// For its sender, the chat's owners and admins, and your backend. The message leaves the
    /// history for everyone; members' devices get `ChatMessageDeleted`.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/messages/:messageId",
        method = "delete",
        operation_id = "deleteChatMessage"
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
        /// The message id.
        #[oai(name = "messageId")]
        message_id: Path<Uuid>,
        /// With an API key: the user to act as.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
    ) -> ApiResult<Deleted> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let mut tx = state.db.begin().await?;
        let access = chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        let sender =
            db::chat_messages::sender_for_update(&mut tx, tenant_id.0, chat_id.0, message_id.0)
                .await?
                .ok_or_else(message_not_found)?;
        let is_sender = actor.as_ref().is_some_and(|a| a.as_str() == sender);
        require(
            is_sender || access.role.is_none_or(MemberRole::manages_members),
            "Only the sender and the chat's owners and admins can delete a message.",
        )?;
        db::chat_messages::delete(&mut tx, tenant_id.0, chat_id.0, message_id.0).await?;
        let members = db::chats::member_ids(&mut tx, tenant_id.0, chat_id.0).await?;
        tx.commit().await?;
        let event = event_for(EventType::ChatMessageDeleted, message_id.0, chat_id.0);
        publish_to_all(&state, tenant_id.0, &members, event).await;
        Ok(Deleted::NoContent)
    }

    /// Mark a chat read
    ///
    /// Every message up to `upToMessageId` (the newest when left out: send `{}`) is read by the
    /// acting user:
    /// their unread count drops accordingly. Receipts never move backwards. Members' devices get
    /// `ChatRead` (`id` = the last read message).
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/read",
        method = "put",
        operation_id = "markChatRead"
    )]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// Required with an API key: the reader.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        body: JsonBody<ReadRequest>,
    ) -> ApiResult<Json<ReadState>> {
        let caller = auth.0;
        let user = caller.acting_user(of_user_id.0, OF_USER_ID)?;
        let requested = body.0.up_to_message_id;
        let mut tx = state.db.begin().await?;
        chat_access(&mut tx, tenant_id.0, chat_id.0, &Some(user.clone())).await?;
        let up_to = up_to(&mut tx, tenant_id.0, chat_id.0, requested).await?;
        let moved = match up_to {
            Some(id) => {
                db::chat_receipts::advance(&mut tx, tenant_id.0, chat_id.0, user.as_str(), id, true)
                    .await?
            }
            None => false,
        };
        let last_read =
            db::chat_receipts::last_read(&mut tx, tenant_id.0, chat_id.0, user.as_str()).await?;
        let unread =
            db::chat_receipts::unread_count(&mut tx, tenant_id.0, chat_id.0, user.as_str()).await?;
        let members = if moved {
            db::chats::member_ids(&mut tx, tenant_id.0, chat_id.0).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        if let (true, Some(id)) = (moved, last_read) {
            let event = event_for(EventType::ChatRead, id, chat_id.0);
            publish_to_all(&state, tenant_id.0, &members, event).await;
        }
        Ok(Json(ReadState {
            chat_id: chat_id.0,
            last_read_message_id: last_read,
            unread_count: unread,
        }))
    }

    /// Get a message's delivery and read state
    ///
    /// For every member but the sender: `Sent`, `Delivered` (one of their devices fetched it)
    /// or `Read`, with when. Members come in user id order, a page at a time: pass the
    /// `nextAfter` of one page as `after` to get the next.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/messages/:messageId/info",
        method = "get",
        operation_id = "getChatMessageInfo"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn info(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// The message id.
        #[oai(name = "messageId")]
        message_id: Path<Uuid>,
        /// With an API key: the user to act as (who must be a member).
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        /// Start after this user id: the `nextAfter` of the previous page.
        after: Query<Option<String>>,
        /// Members per page, 1 to 1,000 (default 100).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<MessageInfo>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let page_size = paging::page_size(page_size.0, INFO_DEFAULT_PAGE_SIZE, INFO_MAX_PAGE_SIZE)?;
        let after = paging::after_user(after.0)?;
        let mut tx = state.db.begin().await?;
        let message = member_message(&mut tx, tenant_id.0, chat_id.0, message_id.0, &actor).await?;
        let receipts = db::chat_receipts::message_info(
            &mut tx,
            tenant_id.0,
            chat_id.0,
            message.id,
            &message.sender_id,
            after.as_ref().map(UserId::as_str),
            page_size + 1,
        )
        .await?;
        tx.commit().await?;
        let (receipts, next_after) =
            paging::keyset_page(receipts, page_size, |r| r.user_id.clone());
        let members = receipts
            .into_iter()
            .map(|r| MemberReceipt {
                status: match (r.delivered_at, r.read_at) {
                    (_, Some(_)) => ReceiptStatus::Read,
                    (Some(_), None) => ReceiptStatus::Delivered,
                    (None, None) => ReceiptStatus::Sent,
                },
                user_id: r.user_id,
                delivered_at: r.delivered_at,
                read_at: r.read_at,
            })
            .collect();
        Ok(Json(MessageInfo {
            message_id: message.id,
            chat_id: chat_id.0,
            sender_id: message.sender_id,
            members,
            next_after,
        }))
    }

    /// Delete old history
    ///
    /// Retention: removes for good every message of the chat created more than `olderThanDays`
    /// days ago (0 removes all). For your backend and the chat's owner.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/messages",
        method = "delete",
        operation_id = "purgeChatMessages"
    )]
    async fn purge(
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
        /// Remove messages older than this many days, 0 to 36,500.
        #[oai(name = "olderThanDays")]
        older_than_days: Query<Option<i64>>,
    ) -> ApiResult<Json<RetentionResult>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let days = older_than_days
            .0
            .filter(|days| (0..=MAX_RETENTION_DAYS).contains(days))
            .ok_or_else(|| {
                ApiError::field(
                    "olderThanDays",
                    format!("The olderThanDays is required: 0 to {MAX_RETENTION_DAYS}."),
                )
            })?;
        let mut tx = state.db.begin().await?;
        let access = chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        require(
            access.role.is_none_or(|role| role == MemberRole::Owner),
            "Only the chat's owner can delete its history.",
        )?;
        let deleted = db::chat_messages::purge_before(
            &mut tx,
            tenant_id.0,
            chat_id.0,
            Utc::now() - Duration::days(days),
        )
        .await?;
        tx.commit().await?;
        Ok(Json(RetentionResult {
            deleted: deleted as i64,
        }))
    }
}

/// The message a read receipt reaches: the one named (which must be in the chat, or a later
/// message could be marked read before it exists), or the newest.
async fn up_to(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    requested: Option<Uuid>,
) -> ApiResult<Option<Uuid>> {
    let Some(id) = requested else {
        return Ok(db::chat_messages::newest_id(conn, tenant_id, chat_id).await?);
    };
    if db::chat_messages::exists(conn, tenant_id, chat_id, id).await? {
        Ok(Some(id))
    } else {
        Err(ApiError::field(
            "upToMessageId",
            "The upToMessageId is not a message of this chat.",
        ))
    }
}

fn location(tenant_id: Uuid, message: &ChatMessage) -> String {
    format!(
        "/tenant/{tenant_id}/v1/Chat/{}/messages/{}",
        message.chat_id, message.id
    )
}

/// A message of the chat, for a member of it (or the tenant); 404 otherwise, as for a message
/// that does not exist or was deleted.
async fn member_message(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    chat_id: Uuid,
    message_id: Uuid,
    actor: &Option<UserId>,
) -> ApiResult<StoredMessage> {
    chat_access(conn, tenant_id, chat_id, actor).await?;
    db::chat_messages::get(conn, tenant_id, chat_id, message_id)
        .await?
        .ok_or_else(message_not_found)
}

fn message_not_found() -> ApiError {
    ApiError::not_found("No such message.")
}
