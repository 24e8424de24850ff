//! Domain types: validated newtypes and the rules that make a value valid.

pub mod broadcast;
pub mod channel;
pub mod chat;
pub mod email;
pub mod html;
mod html_limits;
pub mod ids;
pub mod notification;
pub mod provider;
pub mod queue_at;
pub mod recipient;
pub mod target;
pub mod topic;
mod user_id;
mod validation;

pub use notification::{
    NewNotification, Notification, NotificationDraft, NotificationStatus, NotificationType,
    Priority,
};
pub use queue_at::QueueAt;
pub use recipient::{NewRecipient, Preferences, Recipient, RecipientDraft};
pub use topic::{NewTopic, Subscription, Topic, TopicDraft};
pub use user_id::{USER_ID_MAX_CHARS, UserId, UserIdError};
pub use validation::{FieldErrors, plain_name, storable};
