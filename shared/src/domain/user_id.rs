//! The id an application gives its end users.

use std::fmt;

/// Longest user id accepted.
pub const USER_ID_MAX_CHARS: usize = 128;

/// A validated user id: 1–128 characters of `[A-Za-z0-9._:@-]`.
///
/// The character set keeps ids safe inside Redis channel names and URLs while accepting the
/// shapes applications actually use (UUIDs, emails, `provider:123`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn parse(value: impl Into<String>) -> Result<Self, UserIdError> {
        let value = value.into();
        if value.is_empty() {
            return Err(UserIdError::Empty);
        }
        if value.chars().count() > USER_ID_MAX_CHARS {
            return Err(UserIdError::TooLong);
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-'))
        {
            return Err(UserIdError::BadCharacter);
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    #[error("The user id must not be empty.")]
    Empty,
    #[error("The user id must be at most 128 characters.")]
    TooLong,
    #[error("The user id may contain only letters, digits and . _ : @ -")]
    BadCharacter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_shapes_applications_use() {
        for id in ["alice", "user-123", "a.b@example.com", "auth0:42", "x"] {
            assert!(UserId::parse(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_empty_long_and_unsafe_ids() {
        assert_eq!(UserId::parse(""), Err(UserIdError::Empty));
        assert_eq!(UserId::parse("a".repeat(129)), Err(UserIdError::TooLong));
        assert!(UserId::parse("a".repeat(128)).is_ok());
        for id in ["a b", "a/b", "a*", "ünïcode", "a\nb"] {
            assert_eq!(UserId::parse(id), Err(UserIdError::BadCharacter), "{id}");
        }
    }
}
