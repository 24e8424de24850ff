//! What the recipient endpoints accept and return.

use chrono::{DateTime, Utc};
use herald_shared::domain::{self, RecipientDraft};
use poem_openapi::Object;
use serde::Deserialize;

use crate::notifications::model::NotificationType;

/// A recipient profile to store. It replaces the stored one as a whole: a field left out is
/// cleared, and `preferences` left out go back to their defaults.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PutRecipientRequest {
    /// Where to email the user: a valid email address. Leave it out to have none.
    pub email: Option<String>,
    /// The name to address the user by, 1–200 characters.
    pub display_name: Option<String>,
    /// The user's language as a BCP 47 tag such as `en`, `en-GB` or `zh-Hant-TW` (at most 35
    /// characters).
    pub locale: Option<String>,
    /// What the user wants to receive. Leave it out to accept every email.
    pub preferences: Option<RecipientPreferencesRequest>,
}

/// What a user wants to receive, as sent.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RecipientPreferencesRequest {
    /// Email at all (default `true`); `false` silences email of every type.
    pub email_enabled: Option<bool>,
    /// Notification types the user does not want by email (default none). Duplicates are
    /// ignored.
    pub email_opt_out: Option<Vec<NotificationType>>,
}

impl From<PutRecipientRequest> for RecipientDraft {
    fn from(request: PutRecipientRequest) -> Self {
        let (email_enabled, email_opt_out) = match request.preferences {
            Some(p) => (
                p.email_enabled,
                p.email_opt_out
                    .map(|types| types.into_iter().map(Into::into).collect()),
            ),
            None => (None, None),
        };
        Self {
            email: request.email,
            display_name: request.display_name,
            locale: request.locale,
            email_enabled,
            email_opt_out,
        }
    }
}

/// A user as Herald knows them: where to email them and what they opted out of.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Recipient {
    /// Your id for the user.
    pub user_id: String,
    /// Where the user is emailed, if anywhere.
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// BCP 47 language tag.
    pub locale: Option<String>,
    pub preferences: RecipientPreferences,
    pub created_at: DateTime<Utc>,
    /// When the profile last changed (a PUT that changes nothing leaves it alone).
    pub updated_at: DateTime<Utc>,
}

/// What a user wants to receive.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RecipientPreferences {
    /// Email at all; `false` silences email of every type.
    pub email_enabled: bool,
    /// Notification types the user does not want by email.
    pub email_opt_out: Vec<NotificationType>,
}

impl From<domain::Recipient> for Recipient {
    fn from(r: domain::Recipient) -> Self {
        Self {
            user_id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            locale: r.locale,
            preferences: RecipientPreferences {
                email_enabled: r.preferences.email_enabled,
                email_opt_out: r
                    .preferences
                    .email_opt_out
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// One page of recipients, in user id order.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RecipientPage {
    pub data: Vec<Recipient>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next_after: Option<String>,
}
