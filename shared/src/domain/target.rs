//! Targets: the addresses a user is reached at beyond the in-app inbox — email addresses,
//! phone numbers, browser push subscriptions and webhook URLs.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::FieldErrors;
use crate::config::Environment;

/// Longest address or push endpoint stored, in bytes.
pub const ADDRESS_MAX_BYTES: usize = 2_048;
/// Most targets one user may have: each send fans out to all of a channel's targets.
pub const MAX_TARGETS_PER_USER: i64 = 50;

/// What a target is; the channel that reaches it shares the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    Email,
    WebPush,
    Sms,
    Webhook,
}

impl TargetKind {
    pub const ALL: [TargetKind; 4] = [Self::Email, Self::WebPush, Self::Sms, Self::Webhook];

    /// The name in the API and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::WebPush => "webPush",
            Self::Sms => "sms",
            Self::Webhook => "webhook",
        }
    }
}

impl std::str::FromStr for TargetKind {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| format!("unknown target type {value:?}"))
    }
}

impl serde::Serialize for TargetKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TargetKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A stored target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: Uuid,
    pub user_id: String,
    pub kind: TargetKind,
    /// The email address, phone number, webhook URL, or push endpoint.
    pub address: String,
    pub push_keys: Option<PushKeys>,
    pub created_at: DateTime<Utc>,
}

/// A browser push subscription's keys (RFC 8291), base64url as the browser gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A target to register, as received.
#[derive(Debug, Clone, Default)]
pub struct TargetDraft {
    pub kind: Option<TargetKind>,
    pub address: Option<String>,
    pub subscription: Option<SubscriptionDraft>,
}

/// The browser's `PushSubscription` JSON, as received.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionDraft {
    pub endpoint: Option<String>,
    pub p256dh: Option<String>,
    pub auth: Option<String>,
}

/// A validated target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTarget {
    pub kind: TargetKind,
    pub address: String,
    pub push_keys: Option<PushKeys>,
}

impl TargetDraft {
    pub fn validate(self, environment: Environment) -> Result<NewTarget, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(kind) = self.kind else {
            errors.add(
                "type",
                "The type is required: email, webPush, sms or webhook.",
            );
            return Err(errors);
        };
        if kind == TargetKind::WebPush {
            if self.address.is_some() {
                errors.add(
                    "address",
                    "A webPush target takes a subscription, not an address.",
                );
            }
            let Some(subscription) = self.subscription else {
                errors.add(
                    "subscription",
                    "A webPush target needs the browser's PushSubscription: { endpoint, keys: { p256dh, auth } }.",
                );
                return Err(errors);
            };
            let target = subscription.validate(environment, &mut errors);
            return errors.finish(target);
        }
        if self.subscription.is_some() {
            errors.add("subscription", "Only webPush targets take a subscription.");
        }
        let Some(address) = self.address else {
            errors.add(
                "address",
                format!("A {} target needs an address.", kind.as_str()),
            );
            return Err(errors);
        };
        let address = match kind {
            TargetKind::Email => errors.check("address", super::email::validate_email(&address)),
            TargetKind::Sms => errors.check("address", validate_phone(&address).map(|()| address)),
            TargetKind::Webhook => errors.check("address", validate_url(&address, environment)),
            TargetKind::WebPush => unreachable!("handled above"),
        };
        errors.finish(address.map(|address| NewTarget {
            kind,
            address,
            push_keys: None,
        }))
    }
}

impl SubscriptionDraft {
    fn validate(self, environment: Environment, errors: &mut FieldErrors) -> Option<NewTarget> {
        let endpoint = match self.endpoint {
            Some(endpoint) => errors.check(
                "subscription.endpoint",
                validate_url(&endpoint, environment),
            ),
            None => {
                errors.add("subscription.endpoint", "The push endpoint is required.");
                None
            }
        };
        let p256dh = errors.check(
            "subscription.keys.p256dh",
            decode_key(
                self.p256dh.as_deref(),
                65,
                "an uncompressed P-256 public key (65 bytes)",
            )
            .and_then(|(text, bytes)| {
                p256::PublicKey::from_sec1_bytes(&bytes)
                    .map(|_| text)
                    .map_err(|_| "This is not a point on the P-256 curve.".to_owned())
            }),
        );
        let auth = errors.check(
            "subscription.keys.auth",
            decode_key(self.auth.as_deref(), 16, "a 16-byte authentication secret")
                .map(|(text, _)| text),
        );
        Some(NewTarget {
            kind: TargetKind::WebPush,
            address: endpoint?,
            push_keys: Some(PushKeys {
                p256dh: p256dh?,
                auth: auth?,
            }),
        })
    }
}

/// A subscription key as base64url (padded or not) of exactly `len` bytes.
fn decode_key(value: Option<&str>, len: usize, what: &str) -> Result<(String, Vec<u8>), String> {
    let value = value.ok_or_else(|| format!("Required: {what}, base64url-encoded."))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(value)
        .or_else(|_| URL_SAFE.decode(value))
        .map_err(|_| format!("Expected {what}, base64url-encoded."))?;
    if bytes.len() != len {
        return Err(format!(
            "Expected {what}; this decodes to {} bytes.",
            bytes.len()
        ));
    }
    Ok((value.trim_end_matches('=').to_owned(), bytes))
}

/// An E.164 phone number: `+`, a country code that does not start with 0, at most 15 digits.
pub fn validate_phone(number: &str) -> Result<(), String> {
    let digits = number.strip_prefix('+').unwrap_or("");
    let valid = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(())
    } else {
        Err(
            "Expected a phone number in E.164 form: + and 2 to 15 digits, such as +14155550123."
                .to_owned(),
        )
    }
}

/// A URL Herald may post to: `https://` (and in development `http://`), with a host, no
/// credentials, and in production no host that names a private network on its face.
pub fn validate_url(text: &str, environment: Environment) -> Result<String, String> {
    if text.len() > ADDRESS_MAX_BYTES {
        return Err(format!("The URL is longer than {ADDRESS_MAX_BYTES} bytes."));
    }
    let url = url::Url::parse(text).map_err(|e| format!("Not a valid URL: {e}."))?;
    match url.scheme() {
        "https" => {}
        "http" if environment.is_development() => {}
        "http" => {
            return Err(
                "The URL must use https:// (http:// is allowed only when HERALD_ENV=development)."
                    .to_owned(),
            );
        }
        _ => return Err("The URL must use https:// (or, in development, http://).".to_owned()),
    }
    let Some(host) = url.host() else {
        return Err("The URL needs a host.".to_owned());
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("The URL must not carry credentials.".to_owned());
    }
    if !environment.is_development() && crate::net::looks_private(&host) {
        return Err("The URL names a private or local address, which Herald does not contact in production.".to_owned());
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: Environment = Environment::Development;
    const PROD: Environment = Environment::Production;
    // A key pair from the RFC 8291 example (section 5).
    const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn push(endpoint: &str, p256dh: &str, auth: &str) -> TargetDraft {
        TargetDraft {
            kind: Some(TargetKind::WebPush),
            address: None,
            subscription: Some(SubscriptionDraft {
                endpoint: Some(endpoint.to_owned()),
                p256dh: Some(p256dh.to_owned()),
                auth: Some(auth.to_owned()),
            }),
        }
    }

    fn with_address(kind: TargetKind, address: &str) -> TargetDraft {
        TargetDraft {
            kind: Some(kind),
            address: Some(address.to_owned()),
            subscription: None,
        }
    }

    #[test]
    fn push_subscriptions_need_a_real_p256_key_and_a_16_byte_secret() {
        let target = push("https://push.example.com/s/1", P256DH, AUTH)
            .validate(PROD)
            .unwrap();
        assert_eq!(target.address, "https://push.example.com/s/1");
        let errors = push("https://push.example.com/s/1", "AAAA", "short")
            .validate(PROD)
            .unwrap_err();
        assert!(errors.fields().contains_key("subscription.keys.p256dh"));
        assert!(errors.fields().contains_key("subscription.keys.auth"));
        // 65 bytes starting 0x04, but not on the curve.
        let off_curve = URL_SAFE_NO_PAD.encode([&[4u8][..], &[1u8; 64]].concat());
        let errors = push("https://push.example.com/", &off_curve, AUTH)
            .validate(PROD)
            .unwrap_err();
        assert!(errors.fields().contains_key("subscription.keys.p256dh"));
    }

    #[test]
    fn phone_numbers_are_e164() {
        assert!(
            with_address(TargetKind::Sms, "+14155550123")
                .validate(PROD)
                .is_ok()
        );
        for bad in [
            "4155550123",
            "+0123",
            "+1 415 555",
            "+1234567890123456",
            "+",
            "+1a",
        ] {
            assert!(
                with_address(TargetKind::Sms, bad).validate(PROD).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn webhook_urls_are_https_and_public_in_production() {
        assert!(
            with_address(TargetKind::Webhook, "https://hooks.example.com/in")
                .validate(PROD)
                .is_ok()
        );
        assert!(
            with_address(TargetKind::Webhook, "http://127.0.0.1:9000/in")
                .validate(DEV)
                .is_ok()
        );
        for bad in [
            "http://hooks.example.com/in",
            "https://127.0.0.1/in",
            "https://localhost/in",
            "https://10.0.0.8/in",
            "https://[::1]/in",
            "https://user:pw@hooks.example.com/",
        ] {
            assert!(
                with_address(TargetKind::Webhook, bad)
                    .validate(PROD)
                    .is_err(),
                "{bad}"
            );
        }
        for bad in [
            "javascript:alert(1)",
            "ftp://example.com/",
            "not a url",
            "data:text/plain,x",
        ] {
            assert!(
                with_address(TargetKind::Webhook, bad)
                    .validate(DEV)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_kind_takes_its_own_fields() {
        assert!(
            with_address(TargetKind::Email, "a@example.com")
                .validate(PROD)
                .is_ok()
        );
        assert!(
            with_address(TargetKind::Email, "nope")
                .validate(PROD)
                .is_err()
        );
        let mut both = push("https://push.example.com/", P256DH, AUTH);
        both.address = Some("x".to_owned());
        assert!(both.validate(PROD).is_err());
        let mut email = with_address(TargetKind::Email, "a@example.com");
        email.subscription = Some(SubscriptionDraft::default());
        assert!(email.validate(PROD).is_err());
        assert!(TargetDraft::default().validate(PROD).is_err());
    }
}
