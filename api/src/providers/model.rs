//! What the provider endpoints accept and return.

use chrono::{DateTime, Utc};
use herald_shared::db::providers::Provider as StoredProvider;
use herald_shared::domain::provider::{self as domain, ProviderDraft, ProviderSettings};
use poem_openapi::{Enum, Object};
use serde::Deserialize;
use serde_json::Value;

/// What a provider sends: email over SMTP, browser push, SMS through a Twilio-compatible API,
/// or signed webhook posts.
#[derive(Enum, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(remote = "domain::ProviderKind", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub enum ProviderType {
    Smtp,
    WebPush,
    Sms,
    Webhook,
}

/// A provider to create, or (PUT) its replacement.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ProviderRequest {
    /// Required on create; on PUT it may be left out, and cannot change.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: Option<ProviderType>,
    /// Unique within your tenant, 1–100 characters.
    pub name: Option<String>,
    /// Lower is tried first (0 to 1,000,000, default 0); ties go to the older provider.
    pub priority: Option<i32>,
    /// Whether it is used (default `true`).
    pub enabled: Option<bool>,
    /// The type's settings. `smtp`: `{ url, from }` (`smtp://user:pass@host:587?tls=required`
    /// or `smtps://…`). `sms`: `{ baseUrl, accountSid, authToken, from }`. `webPush`:
    /// `{ subject? }` (a `mailto:` or `https:` contact; Herald generates the VAPID keys).
    /// `webhook`: none (Herald generates the signing secret). Passwords, tokens and keys are
    /// write-only. On PUT, leave `config` out to keep the stored settings; a `config` given
    /// replaces them whole (secrets included; generated keys and secrets are kept).
    pub config: Option<Value>,
}

impl From<ProviderRequest> for ProviderDraft {
    fn from(request: ProviderRequest) -> Self {
        Self {
            kind: request.kind.map(Into::into),
            name: request.name,
            priority: request.priority,
            enabled: request.enabled,
            config: request.config,
        }
    }
}

/// A provider, without its secrets.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Provider {
    pub id: uuid::Uuid,
    #[oai(rename = "type")]
    pub kind: ProviderType,
    pub name: String,
    pub priority: i32,
    pub enabled: bool,
    /// The settings that are not secret (an SMTP URL is shown without its credentials).
    pub config: Value,
    /// `webPush`: the VAPID public key (base64url), the `applicationServerKey` browsers
    /// subscribe with.
    pub vapid_public_key: Option<String>,
    /// `webhook`, in the response that created it only: the signing secret (`whsec_…`) your
    /// receivers verify signatures with. It is never shown again.
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Provider {
    /// As `GET` shows it.
    pub fn shown(provider: StoredProvider) -> Self {
        let vapid_public_key = match &provider.settings {
            ProviderSettings::WebPush(config, _) => Some(config.vapid_public_key.clone()),
            _ => None,
        };
        Self {
            id: provider.id,
            kind: provider.settings.kind().into(),
            name: provider.name,
            priority: provider.priority,
            enabled: provider.enabled,
            config: provider.settings.public(),
            vapid_public_key,
            secret: None,
            created_at: provider.created_at,
            updated_at: provider.updated_at,
        }
    }

    /// As the response that created it shows it: with a generated webhook secret.
    pub fn created(provider: StoredProvider) -> Self {
        let secret = match &provider.settings {
            ProviderSettings::Webhook(secret) => Some(secret.secret.clone()),
            _ => None,
        };
        Self {
            secret,
            ..Self::shown(provider)
        }
    }
}

/// Your providers, by type and then in the order they are tried.
#[derive(Object, Debug)]
pub struct ProviderList {
    pub data: Vec<Provider>,
}
