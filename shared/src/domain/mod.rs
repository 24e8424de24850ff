//! Domain types: validated newtypes and the rules that make a value valid.

pub mod broadcast;
pub mod html;
pub mod ids;
pub mod notification;
mod user_id;
mod validation;

pub use notification::{
    NewNotification, Notification, NotificationDraft, NotificationStatus, NotificationType,
    Priority,
};
pub use user_id::{USER_ID_MAX_CHARS, UserId, UserIdError};
pub use validation::FieldErrors;
