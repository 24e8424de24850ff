//! Domain types: validated newtypes and the rules that make a value valid.

mod user_id;
mod validation;

pub use user_id::{USER_ID_MAX_CHARS, UserId, UserIdError};
pub use validation::FieldErrors;
