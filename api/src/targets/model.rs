//! What the target endpoints accept and return.

use chrono::{DateTime, Utc};
use herald_shared::domain::target::{self as domain, SubscriptionDraft, TargetDraft};
use poem_openapi::{Enum, Object};
use serde::Deserialize;

/// What a target is: an email address, a browser push subscription, a phone number for SMS, or
/// a URL Herald posts notifications to.
#[derive(Enum, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::TargetKind", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub enum TargetType {
    Email,
    WebPush,
    Sms,
    Webhook,
}

/// A target to register.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateTargetRequest {
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: Option<TargetType>,
    /// For `email`: an email address. For `sms`: a phone number in E.164 form (`+14155550123`).
    /// For `webhook`: an `https://` URL (`http://` too when Herald runs in development).
    pub address: Option<String>,
    /// For `webPush`: the browser's `PushSubscription` as `JSON.stringify` gives it.
    pub subscription: Option<PushSubscription>,
}

/// A browser's push subscription (the Push API's `PushSubscription.toJSON()`).
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PushSubscription {
    /// The push service URL the browser was given.
    pub endpoint: Option<String>,
    /// When the browser says the subscription expires (milliseconds since the epoch), if ever.
    /// Accepted for compatibility; a push service's 404 or 410 is what removes a target.
    pub expiration_time: Option<f64>,
    pub keys: Option<PushSubscriptionKeys>,
}

/// The subscription's keys, base64url as the browser gives them.
#[derive(Object, Deserialize, Debug)]
pub struct PushSubscriptionKeys {
    /// The browser's P-256 public key (65 bytes, uncompressed).
    pub p256dh: Option<String>,
    /// The 16-byte authentication secret.
    pub auth: Option<String>,
}

impl From<CreateTargetRequest> for TargetDraft {
    fn from(request: CreateTargetRequest) -> Self {
        Self {
            kind: request.kind.map(Into::into),
            address: request.address,
            subscription: request.subscription.map(|s| {
                let (p256dh, auth) = match s.keys {
                    Some(keys) => (keys.p256dh, keys.auth),
                    None => (None, None),
                };
                SubscriptionDraft {
                    endpoint: s.endpoint,
                    p256dh,
                    auth,
                }
            }),
        }
    }
}

/// A place a user is reached at.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Target {
    pub id: uuid::Uuid,
    #[oai(rename = "type")]
    pub kind: TargetType,
    /// The email address, phone number or webhook URL; absent for push subscriptions, whose
    /// endpoint is the browser's secret.
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<domain::Target> for Target {
    fn from(target: domain::Target) -> Self {
        let address = (target.kind != domain::TargetKind::WebPush).then_some(target.address);
        Self {
            id: target.id,
            kind: target.kind.into(),
            address,
            created_at: target.created_at,
        }
    }
}

/// A user's targets.
#[derive(Object, Debug)]
pub struct TargetList {
    /// Oldest first.
    pub data: Vec<Target>,
}
