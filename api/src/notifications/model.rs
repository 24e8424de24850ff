//! What the notification endpoints accept and return (the seed-002 `Notification` model).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_shared::domain::channel::Channel;
use herald_shared::domain::target::TargetKind;
use herald_shared::domain::{self, NotificationDraft};
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a notification is about.
#[derive(Enum, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::NotificationType")]
pub enum NotificationType {
    UserInvite,
    RegistrationWelcome,
    InactivityReminder,
    SystemAnnouncement,
    PasswordReset,
    AccountVerification,
}

/// How urgent a notification is.
#[derive(Enum, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::Priority")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

/// Where a notification is in its life: `Pending` (accepted, being delivered), `Scheduled`
/// (waiting for `scheduledFor`), `Sent` (in the inbox), `Read`, `Failed` (email delivery failed),
/// `Cancelled` (a scheduled one withdrawn), `Grouped` (folded into a digest).
#[derive(Enum, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::NotificationStatus")]
pub enum NotificationStatus {
    Pending,
    Scheduled,
    Sent,
    Read,
    Failed,
    Cancelled,
    Grouped,
}

/// A way a notification reaches its user: the in-app inbox (with its live event), or a
/// delivery to each of the user's targets of that type.
#[derive(Enum, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub enum ChannelName {
    InApp,
    Email,
    WebPush,
    Sms,
    Webhook,
}

impl From<ChannelName> for Channel {
    fn from(name: ChannelName) -> Self {
        match name {
            ChannelName::InApp => Channel::InApp,
            ChannelName::Email => Channel::Target(TargetKind::Email),
            ChannelName::WebPush => Channel::Target(TargetKind::WebPush),
            ChannelName::Sms => Channel::Target(TargetKind::Sms),
            ChannelName::Webhook => Channel::Target(TargetKind::Webhook),
        }
    }
}

impl From<Channel> for ChannelName {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::InApp => ChannelName::InApp,
            Channel::Target(TargetKind::Email) => ChannelName::Email,
            Channel::Target(TargetKind::WebPush) => ChannelName::WebPush,
            Channel::Target(TargetKind::Sms) => ChannelName::Sms,
            Channel::Target(TargetKind::Webhook) => ChannelName::Webhook,
        }
    }
}

/// A notification to create.
#[derive(Object, Deserialize, Serialize, Debug, Clone)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateNotificationRequest {
    /// The recipient (1–128 characters of letters, digits and `._:@-`). Required with an API
    /// key; with a user token it defaults to, and must be, the token's own user.
    pub user_id: Option<String>,
    /// The device or tab that originated it, if any (at most 128 characters).
    pub client_id: Option<String>,
    /// Title, 1–200 characters.
    pub subject: Option<String>,
    /// Plain-text body, 1–10,000 characters. May be omitted when `htmlContent` is given: its
    /// text rendering is used.
    pub message: Option<String>,
    /// What the notification is about. Defaults to `SystemAnnouncement`.
    #[oai(rename = "type", default = "default_notification_type")]
    #[serde(rename = "type")]
    pub notification_type: Option<NotificationType>,
    /// Defaults to `Normal`.
    pub priority: Option<Priority>,
    /// Also send it to this address by email.
    pub email: Option<String>,
    /// HTML body (at most 100 KB). Sanitized on the way in: scripts, event handlers,
    /// `javascript:` URLs, frames, objects and inline styles are removed.
    pub html_content: Option<String>,
    /// A short summary for previews, at most 500 characters.
    pub summary: Option<String>,
    /// Deliver later (ISO 8601, UTC), at most one year ahead. The notification is `Scheduled`
    /// until then and invisible to the user.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Up to 32 string entries for your own use (keys ≤ 64 characters, values ≤ 1,024).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Where it goes: `inApp` (required: every notification is in the inbox) and `email`,
    /// sent to every email target the user has and to `email` above (or else the profile's
    /// address). Default: `inApp`, plus `email` when `email` is set. `webPush`, `sms` and
    /// `webhook` are refused for now: their targets and providers are stored, their sending is
    /// not released yet.
    pub channels: Option<Vec<ChannelName>>,
}

/// The type of a notification created without one (the domain applies the same default).
fn default_notification_type() -> Option<NotificationType> {
    Some(NotificationType::SystemAnnouncement)
}

impl From<CreateNotificationRequest> for NotificationDraft {
    fn from(request: CreateNotificationRequest) -> Self {
        Self {
            user_id: request.user_id,
            client_id: request.client_id,
            subject: request.subject,
            message: request.message,
            html_content: request.html_content,
            summary: request.summary,
            notification_type: request.notification_type.map(Into::into),
            priority: request.priority.map(Into::into),
            email: request.email,
            scheduled_for: request.scheduled_for,
            metadata: request.metadata,
            channels: request
                .channels
                .map(|names| names.into_iter().map(Into::into).collect()),
        }
    }
}

/// A notification in a user's inbox.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct Notification {
    /// Time-ordered id (UUIDv7).
    pub id: Uuid,
    /// Always `Notification`.
    pub object_type: String,
    pub tenant_id: Uuid,
    /// The recipient.
    pub user_id: String,
    pub client_id: Option<String>,
    pub subject: String,
    pub message: String,
    /// Sanitized HTML body.
    pub html_content: Option<String>,
    pub summary: Option<String>,
    #[oai(rename = "type")]
    pub notification_type: NotificationType,
    pub priority: Priority,
    pub status: NotificationStatus,
    pub created_at: DateTime<Utc>,
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When it reached the inbox.
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub metadata: BTreeMap<String, String>,
    /// Notifications of the same type for the same user close together share a group.
    pub group_id: Option<Uuid>,
    /// The broadcast it came from, if any.
    pub broadcast_id: Option<Uuid>,
    /// The address it is emailed to, if any.
    pub email: Option<String>,
    /// Email delivery attempts that failed.
    pub retry_count: i32,
    /// The last email delivery error, if any.
    pub error_message: Option<String>,
    /// The channels it goes out on; `GET /Notifications/{id}/deliveries` tells how each send
    /// went.
    pub channels: Vec<ChannelName>,
}

impl From<domain::Notification> for Notification {
    fn from(n: domain::Notification) -> Self {
        let channels = n.channels().into_iter().map(Into::into).collect();
        Self {
            channels,
            id: n.id,
            object_type: "Notification".to_owned(),
            tenant_id: n.tenant_id,
            user_id: n.user_id,
            client_id: n.client_id,
            subject: n.subject,
            message: n.message,
            html_content: n.html_content,
            summary: n.summary,
            notification_type: n.notification_type.into(),
            priority: n.priority.into(),
            status: n.status.into(),
            created_at: n.created_at,
            scheduled_for: n.scheduled_for,
            sent_at: n.sent_at,
            read_at: n.read_at,
            metadata: n.metadata,
            group_id: n.group_id,
            broadcast_id: n.broadcast_id,
            email: n.email,
            retry_count: n.retry_count,
            error_message: n.error_message,
        }
    }
}

/// One page of notifications.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct NotificationPage {
    pub data: Vec<Notification>,
    /// This page's number (from 1).
    pub page_number: i64,
    pub page_size: i64,
    /// How many notifications match, over all pages.
    pub total_count: i64,
    /// Same as `totalCount` (for clients of the older API).
    pub total_records: i64,
    pub total_pages: i64,
    /// A page before this one exists.
    pub has_previous_page: bool,
    /// A page after this one exists (`pageNumber + 1 <= totalPages`).
    pub has_next_page: bool,
}

/// The forms `GET …/content` can return.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[oai(rename_all = "lowercase")]
pub enum ContentFormat {
    Html,
    Text,
    Summary,
    #[default]
    Full,
}

/// A notification's content in the requested form; fields of other forms are absent.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct NotificationContent {
    pub id: Uuid,
    pub format: ContentFormat,
    pub subject: String,
    /// HTML (`html`, `full`): the sanitized HTML, or the plain message as HTML when there is none.
    #[oai(skip_serializing_if_is_none)]
    pub html: Option<String>,
    /// Plain text (`text`, `full`).
    #[oai(skip_serializing_if_is_none)]
    pub text: Option<String>,
    /// A short summary (`summary`, `full`): the given summary, or the start of the text.
    #[oai(skip_serializing_if_is_none)]
    pub summary: Option<String>,
}

/// The badge count.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UnreadCount {
    pub user_id: String,
    pub unread_count: i64,
}

/// The outcome of marking everything read.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ReadAllResult {
    /// How many notifications changed from unread to read.
    pub updated: i64,
}
