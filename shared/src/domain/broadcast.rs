//! Broadcasts: one notification template to many users.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::notification::{Content, MAX_SCHEDULE_AHEAD_DAYS, validate_content, validate_metadata};
use super::{FieldErrors, NotificationType, Priority, UserId};

/// Most user ids one request may name (bigger audiences: topics or all users).
pub const MAX_USER_IDS: usize = 10_000;
pub const MAX_TOPIC_IDS: usize = 100;

/// Where a broadcast is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BroadcastStatus {
    Queued,
    Scheduled,
    FanningOut,
    Completed,
    Cancelled,
    Failed,
}

impl BroadcastStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Scheduled => "Scheduled",
            Self::FanningOut => "FanningOut",
            Self::Completed => "Completed",
            Self::Cancelled => "Cancelled",
            Self::Failed => "Failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Scheduled,
            Self::FanningOut,
            Self::Completed,
            Self::Cancelled,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// No more work will happen.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
}

/// Who receives a broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    Users(Vec<UserId>),
    Topics(Vec<Uuid>),
    AllUsers,
}

impl Audience {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Users(_) => "Users",
            Self::Topics(_) => "Topics",
            Self::AllUsers => "AllUsers",
        }
    }
}

/// The notification every recipient gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub message: String,
    pub html_content: Option<String>,
    pub summary: Option<String>,
    pub notification_type: NotificationType,
    pub priority: Priority,
    pub metadata: BTreeMap<String, String>,
}

/// A broadcast request, as received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastDraft {
    pub user_ids: Option<Vec<String>>,
    pub topic_ids: Option<Vec<Uuid>>,
    pub all_users: Option<bool>,
    pub subject: Option<String>,
    pub message: Option<String>,
    pub html_content: Option<String>,
    pub summary: Option<String>,
    pub notification_type: Option<NotificationType>,
    pub priority: Option<Priority>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub email: Option<bool>,
}

/// A validated broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBroadcast {
    pub audience: Audience,
    pub template: Template,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub send_email: bool,
}

impl BroadcastDraft {
    pub fn validate(self, now: DateTime<Utc>) -> Result<NewBroadcast, FieldErrors> {
        let mut errors = FieldErrors::new();
        let audience = audience(
            &mut errors,
            self.user_ids,
            self.topic_ids,
            self.all_users.unwrap_or(false),
        );
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
        if self.notification_type.is_none() {
            errors.add("type", "The type field is required.");
        }
        let metadata = self.metadata.unwrap_or_default();
        validate_metadata(&mut errors, &metadata);
        let scheduled_for = self.scheduled_for.filter(|when| {
            let ok = *when > now && *when <= now + Duration::days(MAX_SCHEDULE_AHEAD_DAYS);
            if !ok {
                errors.add(
                    "scheduledFor",
                    "The scheduledFor time must be in the future and within one year.",
                );
            }
            ok
        });
        let (Some(audience), Some(subject), Some(message), Some(notification_type), true) = (
            audience,
            subject,
            message,
            self.notification_type,
            errors.is_empty(),
        ) else {
            return Err(errors);
        };
        Ok(NewBroadcast {
            audience,
            template: Template {
                subject,
                message,
                html_content,
                summary,
                notification_type,
                priority: self.priority.unwrap_or(Priority::Normal),
                metadata,
            },
            scheduled_for,
            send_email: self.email.unwrap_or(false),
        })
    }
}

fn audience(
    errors: &mut FieldErrors,
    user_ids: Option<Vec<String>>,
    topic_ids: Option<Vec<Uuid>>,
    all_users: bool,
) -> Option<Audience> {
    match (user_ids, topic_ids, all_users) {
        (Some(ids), None, false) => {
            if ids.is_empty() || ids.len() > MAX_USER_IDS {
                errors.add(
                    "userIds",
                    format!("Give 1 to {MAX_USER_IDS} user ids (use topics or allUsers for more)."),
                );
                return None;
            }
            let mut valid = Vec::with_capacity(ids.len());
            for (index, id) in ids.into_iter().enumerate() {
                match UserId::parse(id) {
                    Ok(id) => valid.push(id),
                    Err(error) => errors.add(format!("userIds[{index}]"), error.to_string()),
                }
            }
            valid.sort_unstable();
            valid.dedup();
            Some(Audience::Users(valid))
        }
        (None, Some(mut topics), false) => {
            if topics.is_empty() || topics.len() > MAX_TOPIC_IDS {
                errors.add("topicIds", format!("Give 1 to {MAX_TOPIC_IDS} topic ids."));
                return None;
            }
            topics.sort_unstable();
            topics.dedup();
            Some(Audience::Topics(topics))
        }
        (None, None, true) => Some(Audience::AllUsers),
        _ => {
            errors.add(
                "audience",
                "Give exactly one of userIds, topicIds or allUsers: true.",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> BroadcastDraft {
        BroadcastDraft {
            user_ids: Some(vec!["b".into(), "a".into(), "a".into()]),
            subject: Some("Hi".into()),
            message: Some("All".into()),
            notification_type: Some(NotificationType::SystemAnnouncement),
            ..Default::default()
        }
    }

    #[test]
    fn user_ids_are_deduplicated_and_ordered() {
        let new = draft().validate(Utc::now()).unwrap();
        let ids: Vec<_> = match new.audience {
            Audience::Users(ids) => ids.into_iter().map(UserId::into_string).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ids, ["a", "b"]);
        assert!(!new.send_email);
    }

    #[test]
    fn exactly_one_audience_is_required() {
        let both = BroadcastDraft {
            all_users: Some(true),
            ..draft()
        };
        assert!(
            both.validate(Utc::now())
                .unwrap_err()
                .fields()
                .contains_key("audience")
        );
        let none = BroadcastDraft {
            user_ids: None,
            ..draft()
        };
        assert!(
            none.validate(Utc::now())
                .unwrap_err()
                .fields()
                .contains_key("audience")
        );
        let too_many = BroadcastDraft {
            user_ids: Some(vec!["u".into(); MAX_USER_IDS + 1]),
            ..draft()
        };
        assert!(
            too_many
                .validate(Utc::now())
                .unwrap_err()
                .fields()
                .contains_key("userIds")
        );
        let bad = BroadcastDraft {
            user_ids: Some(vec!["ok".into(), "not ok".into()]),
            ..draft()
        };
        assert!(
            bad.validate(Utc::now())
                .unwrap_err()
                .fields()
                .contains_key("userIds[1]")
        );
    }
}
