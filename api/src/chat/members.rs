//! `Chat/{chatId}/members`: who is in a chat.

use std::collections::HashSet;

use herald_shared::db;
use herald_shared::domain::UserId;
use herald_shared::domain::chat::{ChatType, MAX_MEMBER_IDS, MemberRole};
use herald_shared::domain::topic::parse_user_id_list;
use herald_shared::events::{EventType, MessagingEvent};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::model::{AddMembersRequest, AddMembersResult, ChatMemberPage};
use super::{Deleted, actor, chat_access, event_for, not_found, require};
use crate::body::JsonBody;
use crate::caller::Auth;
use crate::error::{ApiError, ApiResult};
use crate::events::publish_after_commit;
use crate::paging;
use crate::state::AppState;
use crate::tags::ApiTags;

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1_000;

pub struct ChatMembersApi;

#[OpenApi(tag = "ApiTags::Chat")]
impl ChatMembersApi {
    /// List a chat's members
    ///
    /// In user id order, with each member's role and read/delivery receipts, a page at a time:
    /// pass the `nextAfter` of one page as `after` to get the next.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/members",
        method = "get",
        operation_id = "listChatMembers"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
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
        /// Start after this user id: the `nextAfter` of the previous page.
        after: Query<Option<String>>,
        /// Members per page, 1 to 1,000 (default 100).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> ApiResult<Json<ChatMemberPage>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let page_size = paging::page_size(page_size.0, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let after = paging::after_user(after.0)?;
        let mut tx = state.db.begin().await?;
        chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        let rows = db::chats::members(
            &mut tx,
            tenant_id.0,
            chat_id.0,
            after.as_ref().map(UserId::as_str),
            page_size + 1,
        )
        .await?;
        tx.commit().await?;
        let (rows, next_after) = paging::keyset_page(rows, page_size, |m| m.user_id.clone());
        Ok(Json(ChatMemberPage {
            data: rows.into_iter().map(Into::into).collect(),
            next_after,
        }))
    }

    /// Add members to a group chat
    ///
    /// For the chat's owners and admins, and your backend. Users already in the chat are left as
    /// they are. A chat has at most `HERALD_CHAT_MAX_MEMBERS` members (default 10,000): beyond it
    /// the request is 400 (`userIds`) and changes nothing. Each new member gets
    /// `ChatMemberAdded` (`id` = their user id). The other members get one event per request:
    /// `ChatMemberAdded` with the new member's id when one was added, or `ChatMembersChanged`
    /// (`id` = `parentId` = the chat id: fetch the member list) when several were.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/members",
        method = "post",
        operation_id = "addChatMembers"
    )]
    async fn add(
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
        body: JsonBody<AddMembersRequest>,
    ) -> ApiResult<Json<AddMembersResult>> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let user_ids = parse_user_id_list("userIds", body.0.user_ids, MAX_MEMBER_IDS)?;
        let role = body.0.role.map_or(MemberRole::Member, Into::into);
        if role == MemberRole::Owner {
            return Err(ApiError::field(
                "role",
                "New members can be Member or Admin; a chat has one owner.",
            ));
        }
        let mut tx = state.db.begin().await?;
        let access = chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        direct_chats_are_fixed(access.chat_type)?;
        require(
            access.role.is_none_or(MemberRole::manages_members),
            "Only the chat's owners and admins can add members.",
        )?;
        let (count, fresh) =
            db::chats::lock_membership(&mut tx, tenant_id.0, chat_id.0, &user_ids).await?;
        let max = state.config.chat.max_members;
        if usize::try_from(count + fresh).is_ok_and(|total| total > max) {
            return Err(ApiError::field(
                "userIds",
                format!(
                    "A chat has at most {max} members: it has {count}, and {fresh} of these \
                     are new."
                ),
            ));
        }
        let added =
            db::chats::add_members(&mut tx, tenant_id.0, chat_id.0, &user_ids, role).await?;
        let members = db::chats::member_ids(&mut tx, tenant_id.0, chat_id.0).await?;
        tx.commit().await?;
        let events = membership_events(&members, &added, chat_id.0);
        publish_after_commit(&state, tenant_id.0, &events).await;
        Ok(Json(AddMembersResult {
            added: added.len() as i64,
            already_members: (user_ids.len() - added.len()) as i64,
        }))
    }

    /// Remove a member from a group chat
    ///
    /// For the chat's owners and admins (an admin cannot remove the owner), the member
    /// themselves (leaving), and your backend. The removed user loses access at once and gets
    /// no more of the chat's events; they and the remaining members get `ChatMemberRemoved`.
    #[oai(
        path = "/tenant/:tenantId/v1/Chat/:chatId/members/:userId",
        method = "delete",
        operation_id = "removeChatMember"
    )]
    async fn remove(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Your tenant id.
        #[oai(name = "tenantId")]
        tenant_id: Path<Uuid>,
        /// The chat id.
        #[oai(name = "chatId")]
        chat_id: Path<Uuid>,
        /// The member to remove.
        #[oai(name = "userId")]
        user_id: Path<String>,
        /// With an API key: the user to act as.
        #[oai(name = "Of-User-Id")]
        of_user_id: Header<Option<String>>,
    ) -> ApiResult<Deleted> {
        let caller = auth.0;
        let actor = actor(&caller, of_user_id.0)?;
        let target =
            UserId::parse(user_id.0).map_err(|e| ApiError::field("userId", e.to_string()))?;
        let mut tx = state.db.begin().await?;
        let access = chat_access(&mut tx, tenant_id.0, chat_id.0, &actor).await?;
        direct_chats_are_fixed(access.chat_type)?;
        let target_role = db::chats::access(&mut tx, tenant_id.0, chat_id.0, Some(target.as_str()))
            .await?
            .and_then(|a| a.role)
            .ok_or_else(|| ApiError::not_found("No such member in this chat."))?;
        let leaving = actor.as_ref() == Some(&target);
        let allowed = match access.role {
            None => true,
            Some(_) if leaving => true,
            Some(MemberRole::Owner) => true,
            Some(MemberRole::Admin) => target_role != MemberRole::Owner,
            Some(MemberRole::Member) => false,
        };
        require(
            allowed,
            "Only the chat's owners and admins can remove other members.",
        )?;
        if !db::chats::remove_member(&mut tx, tenant_id.0, chat_id.0, target.as_str()).await? {
            return Err(not_found());
        }
        let mut told = db::chats::member_ids(&mut tx, tenant_id.0, chat_id.0).await?;
        tx.commit().await?;
        told.push(target.as_str().to_owned());
        let event = event_for(EventType::ChatMemberRemoved, &target, chat_id.0);
        super::publish_to_all(&state, tenant_id.0, &told, event).await;
        Ok(Deleted::NoContent)
    }
}

/// One event per member, whatever the number added: each new member hears of their own
/// membership; the others hear who joined when it is one user, or that the list changed.
fn membership_events<'a>(
    members: &'a [String],
    added: &[String],
    chat_id: Uuid,
) -> Vec<(&'a str, MessagingEvent)> {
    let for_others = match added {
        [] => return Vec::new(),
        [one] => event_for(EventType::ChatMemberAdded, one, chat_id),
        _ => event_for(EventType::ChatMembersChanged, chat_id, chat_id),
    };
    let added: HashSet<&str> = added.iter().map(String::as_str).collect();
    members
        .iter()
        .map(|member| {
            let event = if added.contains(member.as_str()) {
                event_for(EventType::ChatMemberAdded, member, chat_id)
            } else {
                for_others.clone()
            };
            (member.as_str(), event)
        })
        .collect()
}

/// A direct chat is its two users, for good: 409 for membership changes.
fn direct_chats_are_fixed(chat_type: ChatType) -> ApiResult<()> {
    if chat_type == ChatType::Direct {
        Err(ApiError::conflict(
            "A direct chat's members cannot change; create a group chat instead.",
        ))
    } else {
        Ok(())
    }
}
