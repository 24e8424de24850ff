//! The recipient profile: how Herald reaches a user and what they opted out of.

use chrono::{DateTime, Utc};

use super::{FieldErrors, NotificationType, UserId};

pub const DISPLAY_NAME_MAX_CHARS: usize = 200;
/// BCP 47 allows long tags in theory; 35 covers every real-world language-script-region tag.
pub const LOCALE_MAX_CHARS: usize = 35;
/// The longest subtag BCP 47 allows.
const LOCALE_SUBTAG_MAX_CHARS: usize = 8;

/// A stored recipient profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub preferences: Preferences,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a user wants to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Email at all; `false` silences every type.
    pub email_enabled: bool,
    /// Types the user does not want by email, sorted and without duplicates.
    pub email_opt_out: Vec<NotificationType>,
}

impl Default for Preferences {
    /// A user who said nothing gets email of every type.
    fn default() -> Self {
        Self {
            email_enabled: true,
            email_opt_out: Vec::new(),
        }
    }
}

impl Preferences {
    /// Whether a notification of `kind` may be emailed to this user.
    pub fn accepts_email(&self, kind: NotificationType) -> bool {
        self.email_enabled && !self.email_opt_out.contains(&kind)
    }
}

/// A profile to store for a user, as received (before validation). Absent fields are cleared:
/// a PUT replaces the whole profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientDraft {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub email_enabled: Option<bool>,
    pub email_opt_out: Option<Vec<NotificationType>>,
}

/// A validated profile, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    pub user_id: UserId,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub preferences: Preferences,
}

impl RecipientDraft {
    /// Checks every field against its documented limits (shown on each field in Swagger), reporting all problems at once.
    pub fn validate(self, user_id: UserId) -> Result<NewRecipient, FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = self
            .email
            .and_then(|email| errors.check("email", super::email::validate_email(&email)));
        let display_name = self.display_name.filter(|name| {
            let chars = name.chars().count();
            if !super::plain_name(name) {
                errors.add(
                    "displayName",
                    "The displayName must not contain control characters.",
                );
                false
            } else if name.trim().is_empty() || chars > DISPLAY_NAME_MAX_CHARS {
                errors.add(
                    "displayName",
                    format!(
                        "The displayName must be 1 to {DISPLAY_NAME_MAX_CHARS} characters and \
                         not blank; omit it to have none."
                    ),
                );
                false
            } else {
                true
            }
        });
        let locale = self.locale.filter(|locale| match check_locale(locale) {
            Ok(()) => true,
            Err(message) => {
                errors.add("locale", message);
                false
            }
        });
        let mut email_opt_out = self.email_opt_out.unwrap_or_default();
        // Sorted and unique, so the stored profile reads the same however the client listed it.
        email_opt_out.sort_unstable();
        email_opt_out.dedup();
        errors.into_result(NewRecipient {
            user_id,
            email,
            display_name,
            locale,
            preferences: Preferences {
                email_enabled: self.email_enabled.unwrap_or(true),
                email_opt_out,
            },
        })
    }
}

/// A language tag in the shape of BCP 47: a 2–8 letter language, then `-`-separated subtags of
/// 1–8 letters or digits (`en`, `en-GB`, `zh-Hant-TW`, `es-419`). Registry membership is not
/// checked: a tag is data the application reads back, and new subtags are registered every year.
fn check_locale(locale: &str) -> Result<(), String> {
    let shape = format!(
        "The locale must be a BCP 47 language tag such as en or en-GB, at most \
         {LOCALE_MAX_CHARS} characters."
    );
    if locale.chars().count() > LOCALE_MAX_CHARS {
        return Err(shape);
    }
    let mut subtags = locale.split('-');
    let language = subtags.next().unwrap_or_default();
    let language_ok = (2..=LOCALE_SUBTAG_MAX_CHARS).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic());
    let rest_ok = subtags.all(|subtag| {
        (1..=LOCALE_SUBTAG_MAX_CHARS).contains(&subtag.len())
            && subtag.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if language_ok && rest_ok {
        Ok(())
    } else if locale.contains('_') {
        Err(format!("{shape} Use - between subtags, not _."))
    } else {
        Err(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserId {
        UserId::parse("alice").unwrap()
    }

    fn fields(draft: RecipientDraft) -> Vec<String> {
        draft
            .validate(alice())
            .unwrap_err()
            .fields()
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn an_empty_draft_is_a_profile_that_accepts_every_email() {
        let new = RecipientDraft::default().validate(alice()).unwrap();
        assert_eq!(new.preferences, Preferences::default());
        assert!(new.preferences.accepts_email(NotificationType::UserInvite));
        assert_eq!(
            (new.email, new.display_name, new.locale),
            (None, None, None)
        );
    }

    #[test]
    fn every_limit_is_reported_by_field() {
        let bad = RecipientDraft {
            email: Some("not-an-email".into()),
            display_name: Some("d".repeat(DISPLAY_NAME_MAX_CHARS + 1)),
            locale: Some("english please".into()),
            ..Default::default()
        };
        assert_eq!(fields(bad), ["displayName", "email", "locale"]);
        let blank = RecipientDraft {
            display_name: Some("   ".into()),
            ..Default::default()
        };
        assert_eq!(fields(blank), ["displayName"]);
    }

    #[test]
    fn locales_follow_the_shape_of_bcp_47() {
        for good in ["en", "en-GB", "zh-Hant-TW", "es-419", "de-CH-1996", "fil"] {
            let draft = RecipientDraft {
                locale: Some(good.into()),
                ..Default::default()
            };
            assert!(draft.validate(alice()).is_ok(), "{good}");
        }
        let too_long = format!("en-{}", ["abcdefgh"; 4].join("-"));
        for bad in [
            "", "e", "en_GB", "en-", "-en", "en--GB", "12", "en-GB!", &too_long,
        ] {
            let draft = RecipientDraft {
                locale: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(fields(draft), ["locale"], "{bad}");
        }
    }

    #[test]
    fn opt_outs_are_sorted_unique_and_silence_their_types_only() {
        let new = RecipientDraft {
            email: Some(" alice@example.com ".into()),
            email_opt_out: Some(vec![
                NotificationType::PasswordReset,
                NotificationType::UserInvite,
                NotificationType::PasswordReset,
            ]),
            ..Default::default()
        }
        .validate(alice())
        .unwrap();
        assert_eq!(new.email.as_deref(), Some("alice@example.com"));
        assert_eq!(
            new.preferences.email_opt_out,
            [
                NotificationType::UserInvite,
                NotificationType::PasswordReset
            ]
        );
        assert!(!new.preferences.accepts_email(NotificationType::UserInvite));
        assert!(
            new.preferences
                .accepts_email(NotificationType::SystemAnnouncement)
        );
        let silenced = Preferences {
            email_enabled: false,
            email_opt_out: vec![],
        };
        assert!(!silenced.accepts_email(NotificationType::SystemAnnouncement));
    }
}
