//! Chat: chats, members and messages, and the rules that make new ones valid.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::html::Images;
use super::notification::{text_enum, validate_body, validate_metadata};
use super::topic::parse_user_id_list;
use super::{FieldErrors, UserId, ids};

pub const CHAT_NAME_MAX_CHARS: usize = 200;
/// Most user ids one request may add to a chat.
pub const MAX_MEMBER_IDS: usize = 1_000;
/// Most users, and most group chats, one chat broadcast may address (each).
pub const MAX_BROADCAST_TARGETS: usize = 10_000;

text_enum!(
    /// A conversation between exactly two users, or a named group.
    ChatType { Direct, Group }
);

text_enum!(
    /// What a member may do: owners and admins manage the chat; owners may delete it.
    MemberRole { Owner, Admin, Member }
);

text_enum!(
    /// Whether a message carries (sanitized) HTML beside its plain text.
    ContentType { Text, Html }
);

text_enum!(
    /// Where a chat broadcast is: `Queued` → `Sending` → `Completed`.
    ChatBroadcastStatus { Queued, Sending, Completed }
);

impl MemberRole {
    pub fn manages_members(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// A stored chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: Uuid,
    pub chat_type: ChatType,
    pub name: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub member_count: i64,
}

/// A member of a chat with its receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMember {
    pub user_id: String,
    pub role: MemberRole,
    pub joined_at: DateTime<Utc>,
    pub last_read_message_id: Option<Uuid>,
    pub last_read_at: Option<DateTime<Utc>>,
    pub last_delivered_message_id: Option<Uuid>,
    pub last_delivered_at: Option<DateTime<Utc>>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: String,
    pub content: MessageContent,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

/// A tenant's chat settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatSettings {
    /// Keep `<img>` in chat HTML; off by default, since each image tells its sender the other
    /// members' IP addresses and read times.
    pub remote_images: bool,
}

impl ChatSettings {
    /// How chat HTML is sanitized under these settings.
    pub fn images(self) -> Images {
        if self.remote_images {
            Images::Keep
        } else {
            Images::Remove
        }
    }
}

/// A chat to create, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatDraft {
    pub chat_type: Option<ChatType>,
    pub name: Option<String>,
    pub member_ids: Option<Vec<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A validated chat, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChat {
    pub chat_type: ChatType,
    pub name: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// The acting user, who becomes its owner; `None` when the tenant's backend creates it.
    pub creator: Option<UserId>,
    /// Every member, the creator included, sorted and unique.
    pub members: Vec<String>,
    /// For direct chats: what makes the pair unique (see [`direct_key`]).
    pub direct_key: Option<String>,
}

impl ChatDraft {
    pub fn validate(self, creator: Option<&UserId>) -> Result<NewChat, FieldErrors> {
        let mut errors = FieldErrors::new();
        let chat_type = self.chat_type.unwrap_or(ChatType::Group);
        let name = validate_name(&mut errors, self.name);
        let metadata = self.metadata.unwrap_or_default();
        validate_metadata(&mut errors, &metadata);
        let members = match self.member_ids {
            Some(ids) => errors.check_all(parse_user_id_list("memberIds", ids, MAX_MEMBER_IDS)),
            None => {
                errors.add("memberIds", "The memberIds field is required.");
                None
            }
        };
        let members = members.map(|mut members| {
            if let Some(creator) = creator {
                members.push(creator.as_str().to_owned());
                members.sort_unstable();
                members.dedup();
            }
            members
        });
        let direct_key = match (chat_type, &members) {
            (ChatType::Direct, Some(members)) if members.len() == 2 => {
                Some(direct_key(&members[0], &members[1]))
            }
            (ChatType::Direct, Some(_)) => {
                errors.add(
                    "memberIds",
                    "A Direct chat has exactly two members: you and one other user.",
                );
                None
            }
            _ => None,
        };
        let members = errors.finish(members)?;
        Ok(NewChat {
            chat_type,
            name,
            metadata,
            creator: creator.cloned(),
            members,
            direct_key,
        })
    }
}

/// Changes to a chat's name or metadata, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatUpdate {
    pub name: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl ChatUpdate {
    pub fn validate(self) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = validate_name(&mut errors, self.name);
        if let Some(metadata) = &self.metadata {
            validate_metadata(&mut errors, metadata);
        }
        errors.into_result(Self {
            name,
            metadata: self.metadata,
        })
    }
}

fn validate_name(errors: &mut FieldErrors, name: Option<String>) -> Option<String> {
    let name = name.map(|name| name.trim().to_owned())?;
    if !super::plain_name(&name) {
        errors.add("name", "The name must not contain control characters.");
        return None;
    }
    if name.is_empty() || name.chars().count() > CHAT_NAME_MAX_CHARS {
        errors.add(
            "name",
            format!("The name must be 1 to {CHAT_NAME_MAX_CHARS} characters."),
        );
        return None;
    }
    Some(name)
}

/// The unique key of the direct chat between two users: both ids in order with a space between
/// (user ids cannot contain spaces, so no two pairs share a key).
pub fn direct_key(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    format!("{first} {second}")
}

/// A message to send, as received. Serialized only to fingerprint idempotent requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDraft {
    pub message: Option<String>,
    pub html_content: Option<String>,
    pub content_type: Option<ContentType>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A message's validated content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent {
    /// The plain text (derived from the HTML when only HTML was sent).
    pub message: String,
    /// Already sanitized.
    pub html_content: Option<String>,
    pub content_type: ContentType,
    pub metadata: BTreeMap<String, String>,
}

impl MessageDraft {
    /// Checks the content. `contentType: Html` without `htmlContent` means `message`
    /// is the HTML (seed 003's HTML messages); either way the HTML is sanitized and a text
    /// rendering stands in for a missing plain message. `images` is the tenant's chat setting.
    /// CPU-bound on large HTML: call it off the async threads.
    pub fn validate(self, images: Images) -> Result<MessageContent, FieldErrors> {
        let mut errors = FieldErrors::new();
        let (message, html_source) = match (self.content_type, self.message, self.html_content) {
            (Some(ContentType::Text), _, Some(_)) => {
                errors.add(
                    "contentType",
                    "A Text message cannot carry htmlContent; use contentType Html.",
                );
                (None, None)
            }
            (Some(ContentType::Html), Some(message), None) => (None, Some(message)),
            (_, message, html) => (message, html),
        };
        let (message, html_content) = validate_body(&mut errors, message, html_source, images);
        let metadata = self.metadata.unwrap_or_default();
        validate_metadata(&mut errors, &metadata);
        let message = errors.finish(message)?;
        Ok(MessageContent {
            content_type: if html_content.is_some() {
                ContentType::Html
            } else {
                ContentType::Text
            },
            message,
            html_content,
            metadata,
        })
    }
}

/// One end of a history page: a message id, or an ISO 8601 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCursor {
    Message(Uuid),
    Time(DateTime<Utc>),
}

impl HistoryCursor {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldErrors> {
        if let Ok(id) = value.parse::<Uuid>() {
            return Ok(Self::Message(id));
        }
        DateTime::parse_from_rfc3339(value)
            .map(|at| Self::Time(at.with_timezone(&Utc)))
            .map_err(|_| {
                FieldErrors::single(
                    field,
                    format!("The {field} must be a message id or an ISO 8601 time."),
                )
            })
    }

    /// The exclusive upper id bound of "older than this": `id < bound`.
    pub fn upper_bound(self) -> Uuid {
        match self {
            Self::Message(id) => id,
            Self::Time(at) => ids::first_id_at_or_after(at),
        }
    }

    /// The inclusive lower id bound of "newer than this": `id >= bound`.
    pub fn lower_bound(self) -> Uuid {
        match self {
            Self::Message(id) => Uuid::from_u128(id.as_u128().saturating_add(1)),
            Self::Time(at) => ids::first_id_after(at),
        }
    }
}

/// A chat broadcast to create: one message to the sender's direct chats with `user_ids` and to
/// the group chats `chat_ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatBroadcastDraft {
    pub user_ids: Option<Vec<String>>,
    pub chat_ids: Option<Vec<Uuid>>,
    pub content: MessageDraft,
}

/// A validated chat broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatBroadcast {
    /// Sorted, unique, without the sender.
    pub user_ids: Vec<String>,
    /// Sorted, unique.
    pub chat_ids: Vec<Uuid>,
    pub content: MessageContent,
}

impl ChatBroadcastDraft {
    pub fn validate(
        self,
        sender: &UserId,
        images: Images,
    ) -> Result<NewChatBroadcast, FieldErrors> {
        let mut errors = FieldErrors::new();
        let content = errors.check_all(self.content.validate(images));
        let user_ids = match self.user_ids.filter(|ids| !ids.is_empty()) {
            None => Some(Vec::new()),
            Some(ids) => errors
                .check_all(parse_user_id_list("userIds", ids, MAX_BROADCAST_TARGETS))
                .map(|ids| ids.into_iter().filter(|id| id != sender.as_str()).collect()),
        };
        let mut chat_ids = self.chat_ids.unwrap_or_default();
        if chat_ids.len() > MAX_BROADCAST_TARGETS {
            errors.add(
                "chatIds",
                format!("Send at most {MAX_BROADCAST_TARGETS} chat ids per request."),
            );
        }
        chat_ids.sort_unstable();
        chat_ids.dedup();
        if user_ids.as_ref().is_some_and(Vec::is_empty) && chat_ids.is_empty() {
            errors.add(
                "userIds",
                "Name at least one recipient in userIds (other than yourself) or chatIds.",
            );
        }
        let (user_ids, content) = errors.finish(user_ids.zip(content))?;
        Ok(NewChatBroadcast {
            user_ids,
            chat_ids,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id.to_owned()).unwrap()
    }

    fn fields(errors: FieldErrors) -> Vec<String> {
        errors.fields().keys().cloned().collect()
    }

    #[test]
    fn a_direct_chat_is_the_creator_and_one_other_user() {
        let draft = |ids: &[&str]| ChatDraft {
            chat_type: Some(ChatType::Direct),
            member_ids: Some(ids.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let chat = draft(&["zoe"]).validate(Some(&user("adam"))).unwrap();
        assert_eq!(chat.members, ["adam", "zoe"]);
        assert_eq!(chat.direct_key.as_deref(), Some("adam zoe"));
        let same = draft(&["adam", "zoe"]).validate(None).unwrap();
        assert_eq!(same.direct_key, chat.direct_key);
        assert_eq!(
            fields(draft(&["b", "c"]).validate(Some(&user("a"))).unwrap_err()),
            ["memberIds"]
        );
    }

    #[test]
    fn html_messages_are_sanitized_and_get_a_text_rendering() {
        let content = MessageDraft {
            message: Some("<b>Hi</b><script>alert(1)</script>".into()),
            content_type: Some(ContentType::Html),
            ..Default::default()
        }
        .validate(Images::Keep)
        .unwrap();
        assert_eq!(content.content_type, ContentType::Html);
        assert!(!content.html_content.as_deref().unwrap().contains("script"));
        assert_eq!(content.message.trim(), "Hi");
        let errors = MessageDraft {
            message: Some("m".repeat(10_001)),
            metadata: Some((0..33).map(|i| (format!("k{i}"), "v".into())).collect()),
            ..Default::default()
        }
        .validate(Images::Keep)
        .unwrap_err();
        assert_eq!(fields(errors), ["message", "metadata"]);
    }

    #[test]
    fn cursors_are_ids_or_times() {
        let id = Uuid::now_v7();
        let cursor = HistoryCursor::parse("before", &id.to_string()).unwrap();
        assert_eq!(cursor.upper_bound(), id);
        assert!(cursor.lower_bound() > id);
        assert!(matches!(
            HistoryCursor::parse("after", "2026-01-01T00:00:00Z"),
            Ok(HistoryCursor::Time(_))
        ));
        assert!(HistoryCursor::parse("after", "yesterday").is_err());
    }

    #[test]
    fn a_broadcast_needs_a_recipient_besides_the_sender() {
        let draft = ChatBroadcastDraft {
            user_ids: Some(vec!["me".into()]),
            content: MessageDraft {
                message: Some("hi".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            fields(draft.validate(&user("me"), Images::Keep).unwrap_err()),
            ["userIds"]
        );
    }
}
