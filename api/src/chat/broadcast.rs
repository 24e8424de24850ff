//! `Chat/broadcast`: one message into many chats (seed 003's `sendall`, without its limit of 50).
//!
//! Small broadcasts are sent before the response; larger ones are queued for `herald-fanout`
//! (`ChatFanOut`), which writes them a chunk at a time. Both use `herald_shared::chat_fanout`.

use crate::idempotency::IdempotencyGuard;
use herald_shared::chat_fanout;
use herald_shared::db;
use herald_shared::domain::chat::ChatBroadcastDraft;
use herald_shared::jobs::ChatFanOut;
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::OF_USER_ID;
use super::model::{ChatBroadcast, ChatBroadcastRequest};
use crate::body::JsonBody;
use crate::caller::Auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tags::ApiTags;

/// Broadcasts with at most this many target chats are sent within the request.
const INLINE_TARGETS: i32 = 100;
/// Chat ids reported in a `chatIds` error: enough to act on, bounded in size.
const MAX_REPORTED_CHATS: usize = 10;

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted: `Completed` already for small broadcasts, otherwise being sent in the
    /// background. With a repeated `Idempotency-Key`, the same broadcast (and nothing new).
    #[oai(status = 202)]
    Accepted(
        Json<ChatBroadcast>,
        /// Where its progress can be read.
        #[oai(header = "Location")]
        String,
        /// `true` when an earlier request with the same key created it.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

pub struct ChatBroadcastApi;

#[OpenApi(tag = "ApiTags::Chat")]
impl ChatBroadcastApi {
    /// Send one message to many chats
    ///
    /// The message goes into the sender's direct chat with each of `userIds` (created when
    /// missing) and into each group chat of `chatIds` (the sender must be a member), up to
    /// 10,000 of each: exactly one message per chat, even if the request is retried with the same
    /// `Idempotency-Key`. Members get `ChatMessage` events as usual. For the tenant's backend
    /// only: an API key with `Of-User-Id` naming the sender; a user token gets 403.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/broadcast",
        method = "post",
        operation_id = "broadcastChatMessage"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// Required with an API key: the sender.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
        /// Any unique string (at most 255 characters) identifying this request across retries.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<ChatBroadcastRequest>,
    ) -> ApiResult<Accepted> {
        let caller = auth.0;
        // One request reaches up to 10,000 users: that is the tenant backend's to decide, not
        // an end user's (who could otherwise open chats with anyone, made-up ids included).
        if caller.user().is_some() {
            return Err(ApiError::forbidden(
                "Chat broadcasts are sent by the tenant's backend: use the API key \
                 (X-API-Key) with Of-User-Id naming the sender.",
            ));
        }
        let sender = caller.acting_user(of_user_id.0, OF_USER_ID)?;
        let draft = ChatBroadcastDraft::from(body.0);
        let images = super::chat_images(&state, tenant_id.0).await?;
        let (checked, acting) = (draft.clone(), sender.clone());
        let new = crate::blocking::run(move || checked.validate(&acting, images)).await?;
        let fingerprinted = (sender.as_str(), &draft);
        let idempotency = IdempotencyGuard::new(idempotency_key.0, &caller, &fingerprinted)?;
        let mut tx = state.db.begin().await?;
        if let Some(stored) = idempotency.replay::<ChatBroadcast>(&mut tx).await? {
            // The stored response is from the time of the first request: answer with now.
            let current = db::chat_broadcasts::get(&mut tx, tenant_id.0, stored.id, false)
                .await?
                .map_or(stored, Into::into);
            let location = location(tenant_id.0, current.id);
            return Ok(Accepted::Accepted(
                Json(current),
                location,
                Some("true".into()),
            ));
        }
        let outside = db::chat_broadcasts::chats_not_joined(
            &mut tx,
            tenant_id.0,
            sender.as_str(),
            &new.chat_ids,
        )
        .await?;
        if !outside.is_empty() {
            let listed: Vec<String> = outside
                .iter()
                .take(MAX_REPORTED_CHATS)
                .map(Uuid::to_string)
                .collect();
            return Err(ApiError::field(
                "chatIds",
                format!(
                    "The sender is not a member of {} of these chats: {}.",
                    outside.len(),
                    listed.join(", ")
                ),
            ));
        }
        let broadcast =
            db::chat_broadcasts::insert(&mut tx, tenant_id.0, sender.as_str(), &new).await?;
        let answered = ChatBroadcast::from(broadcast.clone());
        idempotency.complete(&mut tx, 202, &answered).await?;
        tx.commit().await?;

        let job = ChatFanOut {
            tenant_id: tenant_id.0,
            broadcast_id: broadcast.id,
            cursor: 0,
        };
        if broadcast.total_targets <= INLINE_TARGETS {
            send_inline(&state, &job).await;
        } else if let Err(error) = state.queues.chat_fan_out(job).await {
            // Safe in PostgreSQL: the scheduler's sweep queues it later.
            tracing::warn!(%error, broadcast_id = %broadcast.id, "could not queue chat broadcast; the scheduler will");
        }
        let mut conn = state.db.acquire().await?;
        let current = db::chat_broadcasts::get(&mut conn, tenant_id.0, broadcast.id, false)
            .await?
            .ok_or_else(not_found)?;
        let location = location(tenant_id.0, current.id);
        Ok(Accepted::Accepted(Json(current.into()), location, None))
    }

    /// Get a chat broadcast's progress
    ///
    /// `sent` counts the target chats done; `Completed` when all are.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/broadcast/:broadcastId",
        method = "get",
        operation_id = "getChatBroadcast"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The broadcast id.
        #[oai(name = "broadcastId")]
        broadcast_id: Path<Uuid>,
        /// With an API key: the user to act as (who must be its sender).
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
    ) -> ApiResult<Json<ChatBroadcast>> {
        let caller = auth.0;
        let actor = super::actor(&caller, of_user_id.0)?;
        let mut conn = state.db.acquire().await?;
        let broadcast = db::chat_broadcasts::get(&mut conn, tenant_id.0, broadcast_id.0, false)
            .await?
            .filter(|b| actor.as_ref().is_none_or(|a| a.as_str() == b.sender_id))
            .ok_or_else(not_found)?;
        Ok(Json(broadcast.into()))
    }
}

/// Sends every chunk of a small broadcast now. The broadcast is already accepted: a failure
/// (a lost connection, a deadlock with a concurrent broadcast into the same chats) leaves it
/// unfinished for the scheduler's sweep to complete, and the response reports where it stands.
async fn send_inline(state: &AppState, job: &ChatFanOut) {
    let mut redis = state.redis.clone();
    let prefix = &state.config.redis.prefix;
    loop {
        let written = chat_fanout::write_chunk(
            &state.db,
            job.tenant_id,
            job.broadcast_id,
            None,
            i64::from(INLINE_TARGETS),
        )
        .await;
        let chunk = match written {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, broadcast_id = %job.broadcast_id, "chat broadcast left for the sweep");
                return;
            }
        };
        if let Err(error) =
            chat_fanout::publish_chunk(&state.db, &mut redis, prefix, job.tenant_id, &chunk.written)
                .await
        {
            tracing::warn!(%error, "could not publish chat broadcast events");
        }
        if chunk.finished {
            return;
        }
    }
}

fn location(tenant_id: Uuid, id: Uuid) -> String {
    format!("/tenant/{tenant_id}/v1/Chat/broadcast/{id}")
}

fn not_found() -> ApiError {
    ApiError::not_found("No such chat broadcast.")
}
