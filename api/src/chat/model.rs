//! What the chat endpoints accept and return.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_shared::db::chat_broadcasts;
use herald_shared::db::chats::ChatView;
use herald_shared::domain::chat::{self as domain, ChatBroadcastDraft, ChatDraft, MessageDraft};
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `Direct`: exactly two users, unique per pair. `Group`: any number of members, with a name.
#[derive(Enum, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::ChatType")]
pub enum ChatType {
    Direct,
    Group,
}

/// `Owner` (may delete the chat), `Admin` (manages members), `Member`.
#[derive(Enum, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::MemberRole")]
pub enum MemberRole {
    Owner,
    Admin,
    Member,
}

/// `Text`, or `Html` (sanitized HTML beside the plain text).
#[derive(Enum, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::ContentType")]
pub enum ContentType {
    Text,
    Html,
}

/// A chat to create.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateChatRequest {
    /// `Group` (default) or `Direct`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub chat_type: Option<ChatType>,
    /// The chat's name, 1–200 characters.
    pub name: Option<String>,
    /// The members, 1 to 1,000 user ids. The acting user is added as the owner. A `Direct`
    /// chat has exactly two members: the acting user and one other (or two ids with a bare API
    /// key).
    pub member_ids: Option<Vec<String>>,
    /// Up to 32 string entries for your own use (keys ≤ 64 characters, values ≤ 1,024).
    pub metadata: Option<BTreeMap<String, String>>,
}

impl From<CreateChatRequest> for ChatDraft {
    fn from(r: CreateChatRequest) -> Self {
        Self {
            chat_type: r.chat_type.map(Into::into),
            name: r.name,
            member_ids: r.member_ids,
            metadata: r.metadata,
        }
    }
}

/// Changes to a chat; fields left out stay as they are.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UpdateChatRequest {
    /// The new name, 1–200 characters.
    pub name: Option<String>,
    /// Replaces the metadata entirely.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A chat, as the acting user sees it.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Chat {
    /// Time-ordered id (UUIDv7).
    pub id: Uuid,
    #[oai(rename = "type")]
    pub chat_type: ChatType,
    pub name: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// The user who created it; `null` when your backend created it or the user was erased.
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the last message was sent (or the chat created): the order of `GET /Chat`.
    pub last_activity_at: DateTime<Utc>,
    pub member_count: i64,
    /// The acting user's role; `null` for your backend acting as the tenant.
    pub role: Option<MemberRole>,
    /// Messages from others the acting user has not read (0 for the tenant).
    pub unread_count: i64,
    /// The newest message, if any.
    pub last_message: Option<ChatMessage>,
}

impl From<ChatView> for Chat {
    fn from(view: ChatView) -> Self {
        let chat = view.chat;
        Self {
            id: chat.id,
            chat_type: chat.chat_type.into(),
            name: chat.name,
            metadata: chat.metadata,
            created_by: chat.created_by,
            created_at: chat.created_at,
            updated_at: chat.updated_at,
            last_activity_at: chat.last_activity_at,
            member_count: chat.member_count,
            role: view.role.map(Into::into),
            unread_count: view.unread_count,
            last_message: view.last_message.map(Into::into),
        }
    }
}

/// One page of the acting user's chats, most recent activity first.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ChatPage {
    pub data: Vec<Chat>,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
    pub total_pages: i64,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

/// A member of a chat with their receipts.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ChatMember {
    pub user_id: String,
    pub role: MemberRole,
    pub joined_at: DateTime<Utc>,
    /// Every message up to this one has been read.
    pub last_read_message_id: Option<Uuid>,
    pub last_read_at: Option<DateTime<Utc>>,
    /// Every message up to this one has reached the member (fetched by one of their devices).
    pub last_delivered_message_id: Option<Uuid>,
    pub last_delivered_at: Option<DateTime<Utc>>,
}

impl From<domain::ChatMember> for ChatMember {
    fn from(m: domain::ChatMember) -> Self {
        Self {
            user_id: m.user_id,
            role: m.role.into(),
            joined_at: m.joined_at,
            last_read_message_id: m.last_read_message_id,
            last_read_at: m.last_read_at,
            last_delivered_message_id: m.last_delivered_message_id,
            last_delivered_at: m.last_delivered_at,
        }
    }
}

/// One page of members, in user id order.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ChatMemberPage {
    pub data: Vec<ChatMember>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next_after: Option<String>,
}

/// Users to add to a chat.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AddMembersRequest {
    /// 1 to 1,000 user ids; ids already members are left as they are.
    pub user_ids: Vec<String>,
    /// `Member` (default) or `Admin`.
    pub role: Option<MemberRole>,
}

/// The outcome of adding members.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AddMembersResult {
    pub added: i64,
    pub already_members: i64,
}

/// A message to send.
#[derive(Object, Deserialize, Serialize, Debug, Clone)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SendMessageRequest {
    /// Plain text, 1–10,000 characters. With `contentType: Html` and no `htmlContent`, this is
    /// the HTML. May be omitted when `htmlContent` is given.
    pub message: Option<String>,
    /// HTML (at most 100 KB), sanitized on the way in (scripts, event handlers, `javascript:`
    /// URLs, frames and inline styles are removed).
    pub html_content: Option<String>,
    /// `Text` or `Html`; defaults to `Html` when HTML is given.
    pub content_type: Option<ContentType>,
    /// Up to 32 string entries for your own use (keys ≤ 64 characters, values ≤ 1,024).
    pub metadata: Option<BTreeMap<String, String>>,
}

impl From<SendMessageRequest> for MessageDraft {
    fn from(r: SendMessageRequest) -> Self {
        Self {
            message: r.message,
            html_content: r.html_content,
            content_type: r.content_type.map(Into::into),
            metadata: r.metadata,
        }
    }
}

/// A chat message.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Time-ordered id (UUIDv7).
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: String,
    /// Plain text (a text rendering of the HTML when only HTML was sent).
    pub message: String,
    /// Sanitized HTML, if any.
    pub html_content: Option<String>,
    pub content_type: ContentType,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

impl From<domain::ChatMessage> for ChatMessage {
    fn from(m: domain::ChatMessage) -> Self {
        Self {
            id: m.id,
            chat_id: m.chat_id,
            sender_id: m.sender_id,
            message: m.content.message,
            html_content: m.content.html_content,
            content_type: m.content.content_type.into(),
            metadata: m.content.metadata,
            created_at: m.created_at,
            edited_at: m.edited_at,
        }
    }
}

/// A page of history, newest first.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct MessagePage {
    pub data: Vec<ChatMessage>,
    /// Whether more messages lie beyond this page in the direction of paging: older ones
    /// (paging with `before`, or neither), newer ones (paging with `after`).
    pub has_more: bool,
    /// Pass as `before` for the next older page; `null` when there is none.
    pub next_before: Option<Uuid>,
    /// Pass as `after` for the next newer page; `null` when there is none.
    pub next_after: Option<Uuid>,
}

/// A read receipt.
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ReadRequest {
    /// Every message up to this one is read; the newest message when left out.
    pub up_to_message_id: Option<Uuid>,
}

/// The acting user's read state after a receipt.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ReadState {
    pub chat_id: Uuid,
    pub last_read_message_id: Option<Uuid>,
    pub unread_count: i64,
}

/// Where a message stands for one member.
#[derive(Enum, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Stored, not yet fetched by any of the member's devices.
    Sent,
    Delivered,
    Read,
}

/// One member's receipt for a message.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct MemberReceipt {
    pub user_id: String,
    pub status: ReceiptStatus,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Delivery and read state of a message for every member but its sender.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct MessageInfo {
    pub message_id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: String,
    /// One page of members, in user id order.
    pub members: Vec<MemberReceipt>,
    /// Pass as `after` to get the next page of members; `null` on the last page.
    pub next_after: Option<String>,
}

/// The outcome of a retention run.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RetentionResult {
    /// Messages removed for good.
    pub deleted: i64,
}

/// One message to many chats.
#[derive(Object, Deserialize, Serialize, Debug, Clone)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ChatBroadcastRequest {
    /// Users to message in the sender's direct chat with each (created when missing); up to
    /// 10,000.
    pub user_ids: Option<Vec<String>>,
    /// Group chats (the sender must be a member of each) to message; up to 10,000.
    pub chat_ids: Option<Vec<Uuid>>,
    /// Plain text, 1–10,000 characters (see `SendMessageRequest`).
    pub message: Option<String>,
    pub html_content: Option<String>,
    pub content_type: Option<ContentType>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl From<ChatBroadcastRequest> for ChatBroadcastDraft {
    fn from(r: ChatBroadcastRequest) -> Self {
        Self {
            user_ids: r.user_ids,
            chat_ids: r.chat_ids,
            content: MessageDraft {
                message: r.message,
                html_content: r.html_content,
                content_type: r.content_type.map(Into::into),
                metadata: r.metadata,
            },
        }
    }
}

/// `Queued` → `Sending` → `Completed`.
#[derive(Enum, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::ChatBroadcastStatus")]
pub enum ChatBroadcastState {
    Queued,
    Sending,
    Completed,
}

/// A chat broadcast and its progress.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ChatBroadcast {
    pub id: Uuid,
    pub status: ChatBroadcastState,
    /// Direct chats plus group chats addressed.
    pub total_targets: i64,
    /// Targets done so far.
    pub sent: i64,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<chat_broadcasts::ChatBroadcast> for ChatBroadcast {
    fn from(b: chat_broadcasts::ChatBroadcast) -> Self {
        Self {
            id: b.id,
            status: b.status.into(),
            total_targets: i64::from(b.total_targets),
            sent: i64::from(b.sent),
            created_at: b.created_at,
            completed_at: b.completed_at,
        }
    }
}
