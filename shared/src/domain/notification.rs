//! The notification: its enums, limits and the rules that make a new one valid.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::html;
use super::{FieldErrors, UserId, plain_name, storable};

pub const SUBJECT_MAX_CHARS: usize = 200;
pub const MESSAGE_MAX_CHARS: usize = 10_000;
pub const HTML_MAX_BYTES: usize = 100 * 1024;
pub const SUMMARY_MAX_CHARS: usize = 500;
pub const CLIENT_ID_MAX_CHARS: usize = 128;
pub const METADATA_MAX_KEYS: usize = 32;
pub const METADATA_KEY_MAX_CHARS: usize = 64;
pub const METADATA_VALUE_MAX_CHARS: usize = 1_024;
/// How far ahead a notification may be scheduled.
pub const MAX_SCHEDULE_AHEAD_DAYS: i64 = 366;

/// Declares a string-backed enum stored as text and sent as its variant name.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, String> {
                match value {
                    $(stringify!($variant) => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(super) use text_enum;

text_enum!(
    /// What a notification is about.
    NotificationType {
        UserInvite,
        RegistrationWelcome,
        InactivityReminder,
        SystemAnnouncement,
        PasswordReset,
        AccountVerification,
    }
);

text_enum!(
    /// How urgent a notification is. Declared in ascending order: sorting by priority uses it.
    Priority { Low, Normal, High, Urgent }
);

text_enum!(
    /// Where a notification is in its life.
    NotificationStatus { Pending, Scheduled, Sent, Read, Failed, Cancelled, Grouped }
);

impl Priority {
    /// Stored as a small integer so `ORDER BY priority` means urgency, not alphabetical order.
    pub fn rank(self) -> i16 {
        self as i16
    }

    pub fn from_rank(rank: i16) -> Option<Self> {
        Self::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

impl NotificationStatus {
    /// Statuses an end user never sees in their inbox: not delivered yet, or withdrawn.
    pub const HIDDEN_FROM_USERS: &'static [NotificationStatus] =
        &[Self::Scheduled, Self::Cancelled];
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub tenant_id: uuid::Uuid,
    pub id: uuid::Uuid,
    pub user_id: String,
    pub client_id: Option<String>,
    pub subject: String,
    pub message: String,
    pub html_content: Option<String>,
    pub summary: Option<String>,
    pub notification_type: NotificationType,
    pub priority: Priority,
    pub status: NotificationStatus,
    pub created_at: DateTime<Utc>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub metadata: BTreeMap<String, String>,
    pub group_id: Option<uuid::Uuid>,
    pub broadcast_id: Option<uuid::Uuid>,
    pub email: Option<String>,
    pub retry_count: i32,
    pub error_message: Option<String>,
    /// The channels named at creation; `None` is the default ([`super::channel::effective`]).
    pub channels: Option<Vec<super::channel::Channel>>,
}

/// How long a summary derived from the message may be, in characters (an ellipsis follows).
const DERIVED_SUMMARY_CHARS: usize = 200;

impl Notification {
    /// The channels it goes out on.
    pub fn channels(&self) -> Vec<super::channel::Channel> {
        super::channel::effective(self.channels.as_deref(), self.email.is_some())
    }

    /// Whether the user it belongs to can see it (delivered or about to be).
    pub fn visible_to_user(&self) -> bool {
        !NotificationStatus::HIDDEN_FROM_USERS.contains(&self.status)
    }

    /// The HTML to show: the sanitised `htmlContent`, or else the plain message as a paragraph
    /// (escaped), so an inbox or mail client always has HTML to render.
    pub fn html(&self) -> String {
        self.html_content
            .clone()
            .unwrap_or_else(|| format!("<p>{}</p>", super::html::escape(&self.message)))
    }

    /// The summary to show: the one given, or else the message's first 200 characters.
    pub fn summary_or_derived(&self) -> String {
        self.summary.clone().unwrap_or_else(|| {
            let text: String = self.message.chars().take(DERIVED_SUMMARY_CHARS).collect();
            if text.len() < self.message.len() {
                format!("{text}…")
            } else {
                text
            }
        })
    }
}

/// A request to create a notification, as received (before validation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationDraft {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub message: Option<String>,
    pub html_content: Option<String>,
    pub summary: Option<String>,
    pub notification_type: Option<NotificationType>,
    pub priority: Option<Priority>,
    pub email: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub channels: Option<Vec<super::channel::Channel>>,
}

/// A validated notification, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub user_id: UserId,
    pub client_id: Option<String>,
    pub subject: String,
    pub message: String,
    /// Already sanitized.
    pub html_content: Option<String>,
    pub summary: Option<String>,
    pub notification_type: NotificationType,
    pub priority: Priority,
    pub email: Option<String>,
    /// Set only when in the future: the notification waits as `Scheduled`.
    pub scheduled_for: Option<DateTime<Utc>>,
    pub metadata: BTreeMap<String, String>,
    /// Named channels, ordered and without repeats; `None` is the default.
    pub channels: Option<Vec<super::channel::Channel>>,
}

impl NotificationDraft {
    /// Checks every field against its documented limits (shown on each field in Swagger), reporting all problems at once. `default_user` is
    /// the caller's own id for user tokens; API-key callers must name the user.
    pub fn validate(
        self,
        default_user: Option<&UserId>,
        now: DateTime<Utc>,
    ) -> Result<NewNotification, FieldErrors> {
        let mut errors = FieldErrors::new();
        let user_id = match (self.user_id, default_user) {
            (Some(id), _) => errors.check("userId", UserId::parse(id)),
            (None, Some(own)) => Some(own.clone()),
            (None, None) => {
                errors.add(
                    "userId",
                    "The userId field is required when calling with an API key.",
                );
                None
            }
        };
        let Content {
            subject,
            message,
            html_content,
            summary,
        } = validate_content(
            &mut errors,
            self.subject,
            self.message,
            self.html_content,
            self.summary,
        );
        let client_id = optional_text(&mut errors, "clientId", self.client_id, CLIENT_ID_MAX_CHARS)
            .filter(|id| {
                let plain = plain_name(id);
                if !plain {
                    errors.add(
                        "clientId",
                        "The clientId must not contain control characters.",
                    );
                }
                plain
            });
        let email = self
            .email
            .and_then(|email| errors.check("email", super::email::validate_email(&email)));
        let scheduled_for = self.scheduled_for.filter(|when| {
            if *when <= now {
                errors.add(
                    "scheduledFor",
                    "The scheduledFor time must be in the future.",
                );
                false
            } else if *when > now + Duration::days(MAX_SCHEDULE_AHEAD_DAYS) {
                errors.add(
                    "scheduledFor",
                    "The scheduledFor time must be within one year.",
                );
                false
            } else {
                true
            }
        });
        let metadata = self.metadata.unwrap_or_default();
        validate_metadata(&mut errors, &metadata);
        let channels = super::channel::validate(self.channels, &mut errors);

        // Seed 002 marks only subject and message required.
        let notification_type = self
            .notification_type
            .unwrap_or(NotificationType::SystemAnnouncement);
        let (Some(user_id), Some(subject), Some(message), true) =
            (user_id, subject, message, errors.is_empty())
        else {
            return Err(errors);
        };
        Ok(NewNotification {
            user_id,
            client_id,
            subject,
            message,
            html_content,
            summary,
            notification_type,
            priority: self.priority.unwrap_or(Priority::Normal),
            email,
            scheduled_for,
            metadata,
            channels,
        })
    }
}

/// The content a notification and a broadcast template share, each field checked.
pub(super) struct Content {
    pub subject: Option<String>,
    pub message: Option<String>,
    /// Already sanitized.
    pub html_content: Option<String>,
    pub summary: Option<String>,
}

/// Checks subject, message, HTML and summary. The HTML is sanitized; the plain
/// message may be omitted when HTML is given, and its text rendering stands in.
pub(super) fn validate_content(
    errors: &mut FieldErrors,
    subject: Option<String>,
    message: Option<String>,
    html_content: Option<String>,
    summary: Option<String>,
) -> Content {
    let subject = required_text(errors, "subject", subject, SUBJECT_MAX_CHARS);
    let (message, html_content) = validate_body(errors, message, html_content, html::Images::Keep);
    let summary = optional_text(errors, "summary", summary, SUMMARY_MAX_CHARS);
    Content {
        subject,
        message,
        html_content,
        summary,
    }
}

/// Checks a message and its HTML (`htmlContent`, at most [`HTML_MAX_BYTES`], sanitized within
/// the bounds of [`html::sanitize`]). The plain message may be omitted when HTML is given: its
/// text rendering stands in. CPU-bound on large HTML: call it off the async threads.
pub(super) fn validate_body(
    errors: &mut FieldErrors,
    message: Option<String>,
    html_content: Option<String>,
    images: html::Images,
) -> (Option<String>, Option<String>) {
    let html_content = html_content.and_then(|raw| {
        if !storable(&raw) {
            errors.add(
                "htmlContent",
                "The htmlContent must not contain the NUL character (U+0000).",
            );
            return None;
        }
        if raw.len() > HTML_MAX_BYTES {
            errors.add(
                "htmlContent",
                format!("The htmlContent must be at most {HTML_MAX_BYTES} bytes."),
            );
            return None;
        }
        let clean = errors.check("htmlContent", html::sanitize(&raw, images).map_err(refusal))?;
        (!clean.trim().is_empty()).then_some(clean)
    });
    let message = match (message, &html_content) {
        (None, Some(html)) => errors
            .check("htmlContent", html::to_text(html).map_err(refusal))
            .map(|text| truncate_chars(&text, MESSAGE_MAX_CHARS)),
        (message, _) => required_text(errors, "message", message, MESSAGE_MAX_CHARS),
    };
    (message, html_content)
}

fn refusal(rejection: html::HtmlRejection) -> String {
    format!("The htmlContent {rejection}.")
}

pub(super) fn required_text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    match value {
        Some(text) if !text.trim().is_empty() => optional_text(errors, field, Some(text), max),
        _ => {
            errors.add(field, format!("The {field} field is required."));
            None
        }
    }
}

pub(super) fn optional_text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    let text = value?;
    if !storable(&text) {
        errors.add(
            field,
            format!("The {field} must not contain the NUL character (U+0000)."),
        );
        return None;
    }
    if text.chars().count() > max {
        errors.add(
            field,
            format!("The {field} must be at most {max} characters."),
        );
        return None;
    }
    Some(text)
}

pub(super) fn validate_metadata(errors: &mut FieldErrors, metadata: &BTreeMap<String, String>) {
    if metadata.len() > METADATA_MAX_KEYS {
        errors.add(
            "metadata",
            format!("At most {METADATA_MAX_KEYS} metadata keys are allowed."),
        );
    }
    for (key, value) in metadata {
        if !plain_name(key) {
            errors.add(
                "metadata",
                "Metadata keys must not contain control characters.",
            );
        }
        if !storable(value) {
            errors.add(
                format!("metadata.{}", key.escape_default()),
                "Metadata values must not contain the NUL character (U+0000).",
            );
        }
        if key.is_empty() || key.chars().count() > METADATA_KEY_MAX_CHARS {
            errors.add(
                "metadata",
                format!("Metadata keys must be 1 to {METADATA_KEY_MAX_CHARS} characters."),
            );
        }
        if value.chars().count() > METADATA_VALUE_MAX_CHARS {
            errors.add(
                format!("metadata.{key}"),
                format!("Metadata values must be at most {METADATA_VALUE_MAX_CHARS} characters."),
            );
        }
    }
}

fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> NotificationDraft {
        NotificationDraft {
            user_id: Some("alice".into()),
            subject: Some("Hello".into()),
            message: Some("World".into()),
            notification_type: Some(NotificationType::SystemAnnouncement),
            ..Default::default()
        }
    }

    fn fields(result: Result<NewNotification, FieldErrors>) -> Vec<String> {
        result.unwrap_err().fields().keys().cloned().collect()
    }

    #[test]
    fn a_minimal_draft_is_valid_with_normal_priority() {
        let new = draft().validate(None, Utc::now()).unwrap();
        assert_eq!(new.priority, Priority::Normal);
        assert_eq!(new.scheduled_for, None);
    }

    #[test]
    fn a_draft_without_type_is_a_system_announcement() {
        let untyped = NotificationDraft {
            notification_type: None,
            ..draft()
        };
        let new = untyped.validate(None, Utc::now()).unwrap();
        assert_eq!(new.notification_type, NotificationType::SystemAnnouncement);
    }

    #[test]
    fn every_limit_is_reported_by_field() {
        let now = Utc::now();
        let bad = NotificationDraft {
            user_id: Some("bad id".into()),
            client_id: Some("c".repeat(129)),
            subject: Some("s".repeat(201)),
            message: Some("m".repeat(10_001)),
            html_content: Some("h".repeat(100 * 1024 + 1)),
            summary: Some("x".repeat(501)),
            notification_type: None,
            priority: None,
            email: Some("not-an-email".into()),
            scheduled_for: Some(now - Duration::seconds(1)),
            metadata: Some((0..33).map(|i| (format!("k{i}"), "v".into())).collect()),
            channels: Some(vec![]),
        };
        assert_eq!(
            fields(bad.validate(None, now)),
            [
                "channels",
                "clientId",
                "email",
                "htmlContent",
                "message",
                "metadata",
                "scheduledFor",
                "subject",
                "summary",
                "userId"
            ]
        );
    }

    #[test]
    fn user_tokens_default_to_themselves_and_api_keys_must_name_a_user() {
        let own = UserId::parse("bob").unwrap();
        let mine = NotificationDraft {
            user_id: None,
            ..draft()
        };
        assert_eq!(
            mine.clone()
                .validate(Some(&own), Utc::now())
                .unwrap()
                .user_id,
            own
        );
        assert_eq!(fields(mine.validate(None, Utc::now())), ["userId"]);
    }

    #[test]
    fn scheduling_must_be_future_and_within_a_year() {
        let now = Utc::now();
        let later = NotificationDraft {
            scheduled_for: Some(now + Duration::minutes(5)),
            ..draft()
        };
        assert!(later.validate(None, now).unwrap().scheduled_for.is_some());
        let far = NotificationDraft {
            scheduled_for: Some(now + Duration::days(400)),
            ..draft()
        };
        assert_eq!(fields(far.validate(None, now)), ["scheduledFor"]);
    }

    #[test]
    fn html_alone_provides_the_plain_message() {
        let html_only = NotificationDraft {
            message: None,
            html_content: Some("<p>Hi <b>there</b><script>alert(1)</script></p>".into()),
            ..draft()
        };
        let new = html_only.validate(None, Utc::now()).unwrap();
        assert!(new.message.contains("Hi") && new.message.contains("there"));
        assert!(!new.html_content.unwrap().contains("script"));
    }

    #[test]
    fn metadata_limits_apply_to_keys_and_values() {
        let mut metadata = BTreeMap::new();
        metadata.insert("k".repeat(65), "v".into());
        metadata.insert("long".into(), "v".repeat(1025));
        let result = NotificationDraft {
            metadata: Some(metadata),
            ..draft()
        }
        .validate(None, Utc::now());
        assert_eq!(fields(result), ["metadata", "metadata.long"]);
    }

    #[test]
    fn priority_ranks_round_trip_in_urgency_order() {
        for priority in Priority::ALL {
            assert_eq!(Priority::from_rank(priority.rank()), Some(*priority));
        }
        assert!(Priority::Urgent.rank() > Priority::Low.rank());
    }
}
