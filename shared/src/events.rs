//! Real-time events: what the API and workers publish on Redis pub/sub and hub nodes forward to
//! the user's live connections as the SignalR `MessagingEvent`.
//!
//! Events are deliberately tiny (`{type, id, parentId, createdAt}`): clients fetch details over
//! REST. Pub/sub is at-most-once; clients catch up through REST (`createdAfter`), so a lost event
//! never loses data.

use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::ConnectionManager;
use serde::Serialize;
use uuid::Uuid;

/// The kinds of event a client receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EventType {
    /// A notification was delivered to the inbox. `id` = notification id.
    Message,
    NotificationRead,
    NotificationUnread,
    NotificationDeleted,
    /// `PUT /Notifications/read-all` marked the user's unread notifications read: one event for
    /// the whole operation (one per row would overflow the devices' outboxes). `id` = the user
    /// id; clients refresh their inbox.
    NotificationsReadAll,
    /// A chat message was sent. `id` = message id, `parentId` = chat id.
    ChatMessage,
    /// The message's content changed (its sender edited it).
    ChatMessageEdited,
    ChatMessageDeleted,
    /// `id` = last read message id, `parentId` = chat id.
    ChatRead,
    /// `id` = the member's user id, `parentId` = chat id.
    ChatMemberAdded,
    ChatMemberRemoved,
    /// Several members joined at once: `id` = `parentId` = chat id; fetch the member list.
    ChatMembersChanged,
}

/// The single argument of the hub's `MessagingEvent` invocation, exactly as sent to clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagingEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub id: String,
    /// Always present; `null` for notification events (the SignalR clients rely on it).
    pub parent_id: Option<String>,
    #[serde(serialize_with = "rfc3339_millis")]
    pub created_at: DateTime<Utc>,
}

impl MessagingEvent {
    pub fn notification(kind: EventType, id: Uuid, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            id: id.to_string(),
            parent_id: None,
            created_at: at,
        }
    }

    /// An event about a user's whole inbox (`NotificationsReadAll`): `id` is the user.
    pub fn inbox(kind: EventType, user_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            id: user_id.to_owned(),
            parent_id: None,
            created_at: at,
        }
    }

    /// A chat event: `id` is the message (or member) it concerns, `parentId` the chat.
    pub fn chat(kind: EventType, id: impl ToString, chat_id: Uuid, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            id: id.to_string(),
            parent_id: Some(chat_id.to_string()),
            created_at: at,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialize")
    }
}

fn rfc3339_millis<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The pub/sub channel of one user: `{prefix}:t:{tenantId}:u:{userId}`. Hub nodes SUBSCRIBE to
/// exact names (never patterns), so a `:` inside a user id cannot reach another user's channel.
pub fn user_channel(prefix: &str, tenant_id: Uuid, user_id: &str) -> String {
    format!("{prefix}:t:{tenant_id}:u:{user_id}")
}

/// Publishes events to users' channels, in order, in one pipelined round trip.
///
/// This is the one function the API, the workers and the tests use to emit events.
///
/// Users are named by [`UserId`](crate::domain::UserId)s, or by ids read back from the database
/// (valid when stored).
pub async fn publish<U: AsRef<str>>(
    redis: &mut ConnectionManager,
    prefix: &str,
    tenant_id: Uuid,
    events: &[(U, MessagingEvent)],
) -> redis::RedisResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (user_id, event) in events {
        pipe.publish(
            user_channel(prefix, tenant_id, user_id.as_ref()),
            event.to_json(),
        )
        .ignore();
    }
    pipe.query_async(redis).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn events_serialize_as_the_hub_sends_them() {
        let id = Uuid::nil();
        let at = Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap();
        let event = MessagingEvent::notification(EventType::Message, id, at);
        assert_eq!(
            event.to_json(),
            r#"{"type":"Message","id":"00000000-0000-0000-0000-000000000000","parentId":null,"createdAt":"2026-01-15T10:30:00.000Z"}"#
        );
        assert_eq!(
            user_channel("herald", id, "alice"),
            format!("herald:t:{id}:u:alice")
        );
    }
}
