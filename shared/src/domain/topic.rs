//! Topics: named groups of users, and the rules for creating them and changing their
//! subscribers.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{FieldErrors, UserId};

pub const TOPIC_NAME_MAX_CHARS: usize = 100;
pub const TOPIC_DESCRIPTION_MAX_CHARS: usize = 1_000;
/// Most user ids one subscribe or unsubscribe request may carry.
pub const MAX_USER_IDS_PER_REQUEST: usize = 10_000;
/// Bad user ids reported one by one; past this, one summary line. Keeps the error body small
/// when a client sends thousands of ids in the wrong format.
const MAX_REPORTED_BAD_IDS: usize = 100;

/// A stored topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub subscriber_count: i64,
    pub created_at: DateTime<Utc>,
}

/// One user's subscription to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub user_id: String,
    pub subscribed_at: DateTime<Utc>,
}

/// A topic to create, as received (before validation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicDraft {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// A validated topic, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Without surrounding whitespace, so `"news "` cannot sit beside `"news"`.
    pub name: String,
    pub description: Option<String>,
}

impl TopicDraft {
    /// Checks every field, reporting all problems at once.
    pub fn validate(self) -> Result<NewTopic, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = self.name.map(|name| name.trim().to_owned());
        let name = match name {
            Some(name) if !super::plain_name(&name) => {
                errors.add("name", "The name must not contain control characters.");
                None
            }
            Some(name) if !name.is_empty() && name.chars().count() <= TOPIC_NAME_MAX_CHARS => {
                Some(name)
            }
            _ => {
                errors.add(
                    "name",
                    format!("The name is required: 1 to {TOPIC_NAME_MAX_CHARS} characters."),
                );
                None
            }
        };
        let description = self.description.filter(|text| {
            if !super::storable(text) {
                errors.add(
                    "description",
                    "The description must not contain the NUL character (U+0000).",
                );
                return false;
            }
            let fits = text.chars().count() <= TOPIC_DESCRIPTION_MAX_CHARS;
            if !fits {
                errors.add(
                    "description",
                    format!(
                        "The description must be at most {TOPIC_DESCRIPTION_MAX_CHARS} characters."
                    ),
                );
            }
            fits
        });
        let name = errors.finish(name)?;
        Ok(NewTopic { name, description })
    }
}

/// Validates the `userIds` of a subscribe or unsubscribe request: 1 to
/// [`MAX_USER_IDS_PER_REQUEST`] ids (see [`parse_user_id_list`]).
pub fn parse_user_ids(ids: Vec<String>) -> Result<Vec<String>, FieldErrors> {
    parse_user_id_list("userIds", ids, MAX_USER_IDS_PER_REQUEST)
}

/// Validates a list of user ids sent as `field`: 1 to `max` ids, each a valid [`UserId`] (a bad
/// one is reported as `field[index]`). Returns them sorted and without duplicates: one row per
/// user, and bulk writes that touch rows in index order, so concurrent requests cannot deadlock
/// each other.
pub fn parse_user_id_list(
    field: &str,
    ids: Vec<String>,
    max: usize,
) -> Result<Vec<String>, FieldErrors> {
    if ids.is_empty() || ids.len() > max {
        return Err(FieldErrors::single(
            field,
            format!("Send 1 to {max} user ids per request (got {}).", ids.len()),
        ));
    }
    let mut errors = FieldErrors::new();
    let mut bad = 0usize;
    let mut valid = Vec::with_capacity(ids.len());
    for (index, id) in ids.into_iter().enumerate() {
        match UserId::parse(id) {
            Ok(id) => valid.push(id.into_string()),
            Err(error) => {
                bad += 1;
                if bad <= MAX_REPORTED_BAD_IDS {
                    errors.add(format!("{field}[{index}]"), error.to_string());
                }
            }
        }
    }
    if bad > MAX_REPORTED_BAD_IDS {
        errors.add(
            field,
            format!("{bad} user ids are invalid; the first {MAX_REPORTED_BAD_IDS} are listed."),
        );
    }
    valid.sort_unstable();
    valid.dedup();
    errors.into_result(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_limited() {
        let topic = TopicDraft {
            name: Some("  Product news ".into()),
            description: None,
        }
        .validate()
        .unwrap();
        assert_eq!(topic.name, "Product news");
        for bad in [None, Some("   ".to_owned()), Some("n".repeat(101))] {
            let errors = TopicDraft {
                name: bad,
                description: Some("d".repeat(1_001)),
            }
            .validate()
            .unwrap_err();
            let fields: Vec<_> = errors.fields().keys().cloned().collect();
            assert_eq!(fields, ["description", "name"]);
        }
    }

    #[test]
    fn user_ids_are_counted_checked_by_index_and_deduplicated() {
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_user_ids(ids(&["bob", "alice", "bob"])).unwrap(),
            ["alice", "bob"]
        );
        let errors = parse_user_ids(ids(&["ok", "bad id", "", "fine"])).unwrap_err();
        let fields: Vec<_> = errors.fields().keys().cloned().collect();
        assert_eq!(fields, ["userIds[1]", "userIds[2]"]);
        assert!(
            parse_user_ids(vec![])
                .unwrap_err()
                .fields()
                .contains_key("userIds")
        );
        let too_many = vec!["u".to_owned(); MAX_USER_IDS_PER_REQUEST + 1];
        assert!(
            parse_user_ids(too_many)
                .unwrap_err()
                .fields()
                .contains_key("userIds")
        );
    }

    #[test]
    fn thousands_of_bad_ids_get_a_bounded_report() {
        let errors = parse_user_ids(vec!["bad id".to_owned(); 5_000]).unwrap_err();
        assert_eq!(errors.fields().len(), MAX_REPORTED_BAD_IDS + 1);
        assert!(errors.fields()["userIds"][0].starts_with("5000 user ids are invalid"));
    }
}
