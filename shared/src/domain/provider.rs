//! Providers: the services a tenant sends through — SMTP relays, a Twilio-compatible SMS API,
//! its web push (VAPID) identity and its webhook signing secret.
//!
//! A provider's settings are split in two: what `GET` shows (`config`) and what is written once
//! and never shown again (`secret`: passwords, tokens, private keys), which is stored sealed
//! under `HERALD_SECRETS_KEY`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldErrors;
use super::target::{validate_phone, validate_url};
use crate::config::Environment;

pub const PROVIDER_NAME_MAX_CHARS: usize = 100;
pub const MAX_PRIORITY: i32 = 1_000_000;
/// Longest value of any setting, in bytes.
const SETTING_MAX_BYTES: usize = 2_048;

/// What a provider is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Smtp,
    WebPush,
    Sms,
    Webhook,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [Self::Smtp, Self::WebPush, Self::Sms, Self::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::WebPush => "webPush",
            Self::Sms => "sms",
            Self::Webhook => "webhook",
        }
    }

    /// Kinds of which a tenant has at most one: a push subscription belongs to the VAPID key
    /// it was made with, and every webhook target is signed with the one secret.
    pub fn is_single(self) -> bool {
        matches!(self, Self::WebPush | Self::Webhook)
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| format!("unknown provider type {value:?}"))
    }
}

/// An SMTP relay's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmtpConfig {
    /// The relay's URL without credentials (`smtp://host:587?tls=required`).
    pub server: String,
    pub from: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSecret {
    /// The URL as given, credentials included.
    pub url: String,
}

/// A Twilio-compatible Messages API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsConfig {
    pub base_url: String,
    pub account_sid: String,
    pub from: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsSecret {
    pub auth_token: String,
}

/// The tenant's VAPID identity (RFC 8292).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebPushConfig {
    /// The `sub` claim: a `mailto:` or `https:` contact for push services.
    pub subject: String,
    /// The uncompressed P-256 public key, base64url: the browser's `applicationServerKey`.
    pub vapid_public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebPushSecret {
    /// The P-256 private scalar, base64url (32 bytes).
    pub vapid_private_key: String,
}

/// The webhook signing secret (Standard Webhooks: `whsec_` and base64 of the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecret {
    pub secret: String,
}

/// The `sub` of VAPID JWTs when the tenant names none.
pub const DEFAULT_VAPID_SUBJECT: &str = "mailto:webpush@herald.invalid";

/// A provider's settings, checked, with the secret half apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSettings {
    Smtp(SmtpConfig, SmtpSecret),
    Sms(SmsConfig, SmsSecret),
    WebPush(WebPushConfig, WebPushSecret),
    Webhook(WebhookSecret),
}

impl ProviderSettings {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Smtp(..) => ProviderKind::Smtp,
            Self::Sms(..) => ProviderKind::Sms,
            Self::WebPush(..) => ProviderKind::WebPush,
            Self::Webhook(..) => ProviderKind::Webhook,
        }
    }

    /// The half `GET` shows.
    pub fn public(&self) -> Value {
        match self {
            Self::Smtp(config, _) => serde_json::to_value(config),
            Self::Sms(config, _) => serde_json::to_value(config),
            Self::WebPush(config, _) => serde_json::to_value(config),
            Self::Webhook(_) => Ok(Value::Object(Default::default())),
        }
        .expect("settings serialize")
    }

    /// The half stored sealed.
    pub fn secret(&self) -> Vec<u8> {
        match self {
            Self::Smtp(_, secret) => serde_json::to_vec(secret),
            Self::Sms(_, secret) => serde_json::to_vec(secret),
            Self::WebPush(_, secret) => serde_json::to_vec(secret),
            Self::Webhook(secret) => serde_json::to_vec(secret),
        }
        .expect("settings serialize")
    }

    /// Puts the halves back together as stored.
    pub fn from_stored(
        kind: ProviderKind,
        public: Value,
        secret: &[u8],
    ) -> serde_json::Result<Self> {
        Ok(match kind {
            ProviderKind::Smtp => Self::Smtp(
                serde_json::from_value(public)?,
                serde_json::from_slice(secret)?,
            ),
            ProviderKind::Sms => Self::Sms(
                serde_json::from_value(public)?,
                serde_json::from_slice(secret)?,
            ),
            ProviderKind::WebPush => Self::WebPush(
                serde_json::from_value(public)?,
                serde_json::from_slice(secret)?,
            ),
            ProviderKind::Webhook => Self::Webhook(serde_json::from_slice(secret)?),
        })
    }

    /// Settings from a request's `config`. `previous` (on update) keeps what the tenant cannot
    /// send: the generated VAPID keys and webhook secret.
    pub fn from_request(
        kind: ProviderKind,
        config: Option<&Value>,
        previous: Option<&ProviderSettings>,
        environment: Environment,
    ) -> Result<Self, FieldErrors> {
        let empty = Value::Object(Default::default());
        let config = config.unwrap_or(&empty);
        let Some(fields) = config.as_object() else {
            return Err(FieldErrors::single("config", "Expected a JSON object."));
        };
        let mut errors = FieldErrors::new();
        let settings = match kind {
            ProviderKind::Smtp => smtp(fields, environment, &mut errors),
            ProviderKind::Sms => sms(fields, environment, &mut errors),
            ProviderKind::WebPush => web_push(fields, previous, &mut errors),
            ProviderKind::Webhook => {
                no_fields(fields, &mut errors);
                Some(match previous {
                    Some(Self::Webhook(secret)) => Self::Webhook(secret.clone()),
                    _ => Self::Webhook(WebhookSecret {
                        secret: format!("whsec_{}", STANDARD.encode(rand::random::<[u8; 32]>())),
                    }),
                })
            }
        };
        errors.finish(settings)
    }
}

/// A provider to create or replace, as received.
#[derive(Debug, Clone, Default)]
pub struct ProviderDraft {
    pub kind: Option<ProviderKind>,
    pub name: Option<String>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    pub config: Option<Value>,
}

/// A checked provider, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProvider {
    pub name: String,
    pub priority: i32,
    pub enabled: bool,
    pub settings: ProviderSettings,
}

impl ProviderDraft {
    /// Checks every field. On update, `previous` is the stored provider's kind and settings:
    /// the kind cannot change, and a `config` left out keeps the stored settings.
    pub fn validate(
        self,
        previous: Option<&ProviderSettings>,
        environment: Environment,
    ) -> Result<NewProvider, FieldErrors> {
        let mut errors = FieldErrors::new();
        let kind = match (self.kind, previous.map(ProviderSettings::kind)) {
            (Some(kind), Some(stored)) if kind != stored => {
                errors.add("type", format!("A provider's type cannot change (this one is {}); create another provider.", stored.as_str()));
                None
            }
            (kind, stored) => kind.or(stored),
        };
        if kind.is_none() && previous.is_none() {
            errors.add(
                "type",
                "The type is required: smtp, webPush, sms or webhook.",
            );
        }
        let name = self.name.map(|name| name.trim().to_owned());
        let name = match name {
            Some(name)
                if !name.is_empty()
                    && name.chars().count() <= PROVIDER_NAME_MAX_CHARS
                    && super::plain_name(&name) =>
            {
                Some(name)
            }
            _ => {
                errors.add("name", format!("The name is required: 1 to {PROVIDER_NAME_MAX_CHARS} characters, no control characters."));
                None
            }
        };
        let priority = self.priority.unwrap_or(0);
        if !(0..=MAX_PRIORITY).contains(&priority) {
            errors.add(
                "priority",
                format!("Expected 0 to {MAX_PRIORITY}; lower is tried first."),
            );
        }
        let settings = kind.and_then(|kind| match (&self.config, previous) {
            (None, Some(stored)) => Some(stored.clone()),
            (config, _) => errors.check_all(ProviderSettings::from_request(
                kind,
                config.as_ref(),
                previous,
                environment,
            )),
        });
        errors.finish(name.zip(settings).map(|(name, settings)| NewProvider {
            name,
            priority,
            enabled: self.enabled.unwrap_or(true),
            settings,
        }))
    }
}

type Fields = serde_json::Map<String, Value>;

/// A required string setting, at most [`SETTING_MAX_BYTES`].
fn text<'a>(fields: &'a Fields, name: &str, errors: &mut FieldErrors) -> Option<&'a str> {
    let field = format!("config.{name}");
    match fields.get(name) {
        Some(Value::String(value)) if value.trim().is_empty() => {
            errors.add(field, "Must not be empty.");
            None
        }
        Some(Value::String(value)) if value.len() > SETTING_MAX_BYTES => {
            errors.add(field, format!("Longer than {SETTING_MAX_BYTES} bytes."));
            None
        }
        Some(Value::String(value)) if value.chars().any(char::is_control) => {
            errors.add(field, "Must not contain control characters.");
            None
        }
        Some(Value::String(value)) => Some(value.trim()),
        Some(_) => {
            errors.add(field, "Expected a string.");
            None
        }
        None => {
            errors.add(field, "Required.");
            None
        }
    }
}

fn unknown_fields(fields: &Fields, known: &[&str], errors: &mut FieldErrors) {
    for name in fields.keys().filter(|name| !known.contains(&name.as_str())) {
        errors.add(
            format!("config.{name}"),
            format!("Unknown setting; expected {}.", known.join(", ")),
        );
    }
}

fn no_fields(fields: &Fields, errors: &mut FieldErrors) {
    for name in fields.keys() {
        errors.add(format!("config.{name}"), "This provider takes no settings.");
    }
}

fn smtp(
    fields: &Fields,
    environment: Environment,
    errors: &mut FieldErrors,
) -> Option<ProviderSettings> {
    unknown_fields(fields, &["url", "from"], errors);
    let url = text(fields, "url", errors).and_then(|url| {
        errors
            .check("config.url", smtp_server(url, environment))
            .map(|server| (url, server))
    });
    let from = text(fields, "from", errors).and_then(|from| {
        errors.check(
            "config.from",
            super::email::parse_mailbox(from).map(|_| from.to_owned()),
        )
    });
    let ((url, server), from) = (url?, from?);
    Some(ProviderSettings::Smtp(
        SmtpConfig { server, from },
        SmtpSecret {
            url: url.to_owned(),
        },
    ))
}

/// The relay's URL as shown: credentials removed.
fn smtp_server(text: &str, environment: Environment) -> Result<String, String> {
    let mut url = url::Url::parse(text).map_err(|e| format!("Not a valid URL: {e}."))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err("Expected an smtp:// or smtps:// URL.".to_owned());
    }
    let Some(host) = url.host() else {
        return Err("The URL needs a host.".to_owned());
    };
    if !environment.is_development() && crate::net::looks_private(&host) {
        return Err("The URL names a private or local address, which Herald does not contact in production.".to_owned());
    }
    // Setting an empty user name or no password on a URL with a host cannot fail.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(url.into())
}

fn sms(
    fields: &Fields,
    environment: Environment,
    errors: &mut FieldErrors,
) -> Option<ProviderSettings> {
    unknown_fields(
        fields,
        &["baseUrl", "accountSid", "authToken", "from"],
        errors,
    );
    let base_url = text(fields, "baseUrl", errors)
        .and_then(|url| errors.check("config.baseUrl", validate_url(url, environment)))
        .map(|url| url.trim_end_matches('/').to_owned());
    let account_sid = text(fields, "accountSid", errors).and_then(|sid| {
        let valid = sid.len() <= 64 && sid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            errors.add(
                "config.accountSid",
                "Expected the account SID: up to 64 letters and digits.",
            );
        }
        valid.then(|| sid.to_owned())
    });
    let auth_token = text(fields, "authToken", errors).map(str::to_owned);
    let from = text(fields, "from", errors).and_then(|from| {
        // A phone number, or an alphanumeric sender id (1–11 characters, at least one letter).
        let sender_id = from.len() <= 11
            && from.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && from.bytes().any(|b| b.is_ascii_alphabetic());
        if validate_phone(from).is_ok() || sender_id {
            Some(from.to_owned())
        } else {
            errors.add("config.from", "Expected an E.164 phone number or an alphanumeric sender id of up to 11 characters.");
            None
        }
    });
    Some(ProviderSettings::Sms(
        SmsConfig {
            base_url: base_url?,
            account_sid: account_sid?,
            from: from?,
        },
        SmsSecret {
            auth_token: auth_token?,
        },
    ))
}

fn web_push(
    fields: &Fields,
    previous: Option<&ProviderSettings>,
    errors: &mut FieldErrors,
) -> Option<ProviderSettings> {
    unknown_fields(fields, &["subject"], errors);
    let subject = match fields.get("subject") {
        None => DEFAULT_VAPID_SUBJECT.to_owned(),
        Some(_) => {
            let subject = text(fields, "subject", errors)?;
            let valid = subject
                .strip_prefix("mailto:")
                .is_some_and(|a| super::email::validate_email(a).is_ok())
                || url::Url::parse(subject)
                    .is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !valid {
                errors.add("config.subject", "Expected a mailto: address or an https:// URL push services can contact you at.");
                return None;
            }
            subject.to_owned()
        }
    };
    let (public, private) = match previous {
        Some(ProviderSettings::WebPush(config, secret)) => (
            config.vapid_public_key.clone(),
            secret.vapid_private_key.clone(),
        ),
        _ => generate_vapid_keys(),
    };
    Some(ProviderSettings::WebPush(
        WebPushConfig {
            subject,
            vapid_public_key: public,
        },
        WebPushSecret {
            vapid_private_key: private,
        },
    ))
}

/// A fresh P-256 key pair: (public key uncompressed, private scalar), both base64url.
fn generate_vapid_keys() -> (String, String) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    loop {
        // A random 32-byte string is a valid scalar but for a 2^-128 chance; draw again then.
        let Ok(secret) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) else {
            continue;
        };
        let public = secret.public_key().to_encoded_point(false);
        return (
            URL_SAFE_NO_PAD.encode(public.as_bytes()),
            URL_SAFE_NO_PAD.encode(secret.to_bytes()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROD: Environment = Environment::Production;

    fn settings(kind: ProviderKind, config: Value) -> Result<ProviderSettings, FieldErrors> {
        ProviderSettings::from_request(kind, Some(&config), None, PROD)
    }

    #[test]
    fn smtp_credentials_are_kept_secret_and_left_out_of_the_shown_server() {
        let smtp = settings(ProviderKind::Smtp, json!({"url": "smtp://me:pw@mail.example.com:587?tls=required", "from": "Acme <no-reply@acme.example>"})).unwrap();
        assert_eq!(
            smtp.public()["server"],
            "smtp://mail.example.com:587?tls=required"
        );
        assert!(!smtp.public().to_string().contains("pw"));
        let stored =
            ProviderSettings::from_stored(ProviderKind::Smtp, smtp.public(), &smtp.secret())
                .unwrap();
        assert_eq!(stored, smtp);
        let errors = settings(
            ProviderKind::Smtp,
            json!({"url": "http://x", "from": "nope", "extra": 1}),
        )
        .unwrap_err();
        for field in ["config.url", "config.from", "config.extra"] {
            assert!(errors.fields().contains_key(field), "{field}: {errors:?}");
        }
        assert!(
            settings(
                ProviderKind::Smtp,
                json!({"url": "smtp://127.0.0.1:25", "from": "a@b.example"})
            )
            .is_err()
        );
    }

    #[test]
    fn sms_needs_every_twilio_setting() {
        let sms = settings(ProviderKind::Sms, json!({"baseUrl": "https://api.twilio.com/", "accountSid": "AC123", "authToken": "t0k", "from": "+15005550006"})).unwrap();
        assert_eq!(
            sms.public(),
            json!({"baseUrl": "https://api.twilio.com", "accountSid": "AC123", "from": "+15005550006"})
        );
        let errors = settings(
            ProviderKind::Sms,
            json!({"baseUrl": "javascript:alert(1)", "accountSid": "AC 1", "from": "0"}),
        )
        .unwrap_err();
        for field in [
            "config.baseUrl",
            "config.accountSid",
            "config.authToken",
            "config.from",
        ] {
            assert!(errors.fields().contains_key(field), "{field}: {errors:?}");
        }
    }

    #[test]
    fn web_push_keys_are_generated_once_and_kept_on_update() {
        let first = settings(ProviderKind::WebPush, json!({})).unwrap();
        let ProviderSettings::WebPush(config, secret) = &first else {
            panic!()
        };
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&config.vapid_public_key)
                .unwrap()
                .len(),
            65
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&secret.vapid_private_key)
                .unwrap()
                .len(),
            32
        );
        assert_eq!(config.subject, DEFAULT_VAPID_SUBJECT);
        let updated = ProviderSettings::from_request(
            ProviderKind::WebPush,
            Some(&json!({"subject": "mailto:ops@acme.example"})),
            Some(&first),
            PROD,
        )
        .unwrap();
        let ProviderSettings::WebPush(new_config, new_secret) = &updated else {
            panic!()
        };
        assert_eq!(new_config.vapid_public_key, config.vapid_public_key);
        assert_eq!(new_secret, secret);
        assert!(settings(ProviderKind::WebPush, json!({"subject": "ops"})).is_err());
    }

    #[test]
    fn webhook_secrets_are_standard_webhooks_keys() {
        let ProviderSettings::Webhook(secret) = settings(ProviderKind::Webhook, json!({})).unwrap()
        else {
            panic!()
        };
        let key = secret.secret.strip_prefix("whsec_").unwrap();
        assert_eq!(STANDARD.decode(key).unwrap().len(), 32);
        assert!(settings(ProviderKind::Webhook, json!({"secret": "mine"})).is_err());
    }
}
