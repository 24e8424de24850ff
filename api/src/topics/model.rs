//! What the topic endpoints accept and return.

use chrono::{DateTime, Utc};
use herald_shared::domain::{self, TopicDraft};
use poem_openapi::Object;
use serde::Deserialize;
use uuid::Uuid;

/// A topic to create.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateTopicRequest {
    /// The topic's name, 1–100 characters, unique in your tenant (case-sensitive; surrounding
    /// whitespace is removed).
    pub name: Option<String>,
    /// What the topic is for, at most 1,000 characters.
    pub description: Option<String>,
}

impl From<CreateTopicRequest> for TopicDraft {
    fn from(request: CreateTopicRequest) -> Self {
        Self {
            name: request.name,
            description: request.description,
        }
    }
}

/// A named group of users, for broadcasts.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Topic {
    /// Time-ordered id (UUIDv7).
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// How many users are subscribed now.
    pub subscriber_count: i64,
    pub created_at: DateTime<Utc>,
}

impl From<domain::Topic> for Topic {
    fn from(t: domain::Topic) -> Self {
        Self {
            id: t.id,
            name: t.name,
            description: t.description,
            subscriber_count: t.subscriber_count,
            created_at: t.created_at,
        }
    }
}

/// One page of topics, oldest first.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct TopicPage {
    pub data: Vec<Topic>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next_after: Option<Uuid>,
}

/// Users to subscribe to or unsubscribe from a topic.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SubscribersRequest {
    /// 1 to 10,000 user ids (each 1–128 characters of letters, digits and `._:@-`). An id listed
    /// twice counts once. A user needs no recipient profile to be subscribed.
    pub user_ids: Vec<String>,
}

/// The outcome of subscribing users.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SubscribeResult {
    /// Users who were not subscribed before.
    pub added: i64,
    /// Users who already were (left as they were).
    pub already_subscribed: i64,
}

/// The outcome of unsubscribing users.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UnsubscribeResult {
    /// Users who were subscribed and no longer are (ids that were not subscribed count zero).
    pub removed: i64,
}

/// A user subscribed to a topic.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Subscriber {
    pub user_id: String,
    /// When the user was subscribed.
    pub subscribed_at: DateTime<Utc>,
}

impl From<domain::Subscription> for Subscriber {
    fn from(s: domain::Subscription) -> Self {
        Self {
            user_id: s.user_id,
            subscribed_at: s.subscribed_at,
        }
    }
}

/// One page of a topic's subscribers, in user id order.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SubscriberPage {
    pub data: Vec<Subscriber>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next_after: Option<String>,
}
