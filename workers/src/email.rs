//! Email deliveries: one email per delivery at most, through the tenant's SMTP providers in
//! priority order (failing over at once when one cannot take the message), or the
//! installation's relay when the tenant has none; retried on transient failures, and sent again
//! after a dead worker only when no server was handed the message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use apalis::prelude::{BoxDynError, Data};
use chrono::{DateTime, Utc};
use herald_shared::config::WorkerConfig;
use herald_shared::db::deliveries::{self, Attempt, DeliveryKey};
use herald_shared::db::providers;
use herald_shared::domain::Notification;
use herald_shared::domain::provider::{ProviderKind, ProviderSettings};
use herald_shared::jobs::Dispatch;
use herald_shared::secrets::SecretsKey;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use crate::outcome::{self, Outcome};
use crate::runtime::Deps;
use crate::smtp::{AwaitingBody, Endpoint, SendFailure, SmtpPool};

/// The name the delivery log gives the installation's own relay (`SMTP_URL`).
pub const INSTALLATION_RELAY: &str = "installation";

/// One way to send email: an SMTP relay (or, in development, `.eml` files) and its sender.
pub struct Relay {
    name: String,
    transport: Transport,
    from: Mailbox,
}

enum Transport {
    Smtp(SmtpPool),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// A message ready to go: the SMTP server has answered `DATA`, or the file is about to be
/// written. What follows may deliver it.
enum Handover<'a> {
    // Boxed: a connection with its read buffer dwarfs the file variant.
    Smtp(Box<AwaitingBody<'a>>, Message),
    File(&'a AsyncFileTransport<Tokio1Executor>, Message),
}

impl Handover<'_> {
    async fn deliver(self) -> Result<(), SendFailure> {
        match self {
            Self::Smtp(awaiting, message) => awaiting.send(&message.formatted()).await,
            Self::File(files, message) => files
                .send(message)
                .await
                .map(drop)
                .map_err(|e| SendFailure::transient(e.to_string())),
        }
    }
}

impl Relay {
    /// Everything up to the point of no return: composing the message and, over SMTP, the
    /// envelope commands until the server waits for the body.
    async fn prepare(
        &self,
        to: &str,
        notification: &Notification,
    ) -> Result<Handover<'_>, SendFailure> {
        let message = self
            .compose(to, notification)
            .map_err(|e| SendFailure::permanent(format!("cannot compose the email: {e}")))?;
        match &self.transport {
            Transport::Smtp(pool) => {
                let body_is_ascii = message.formatted().is_ascii();
                let awaiting = pool.open_data(message.envelope(), body_is_ascii).await?;
                Ok(Handover::Smtp(Box::new(awaiting), message))
            }
            Transport::Files(files) => Ok(Handover::File(files, message)),
        }
    }

    /// HTML and plain text alternatives, so every mail client shows something sensible.
    fn compose(&self, to: &str, notification: &Notification) -> anyhow::Result<Message> {
        Ok(Message::builder()
            .from(self.from.clone())
            .to(herald_shared::domain::email::parse_mailbox(to).map_err(anyhow::Error::msg)?)
            .subject(&notification.subject)
            .multipart(MultiPart::alternative_plain_html(
                notification.message.clone(),
                notification.html(),
            ))?)
    }
}

/// Each SMTP provider's relay, with the `updated_at` of the settings it was built from.
type RelayCache = Mutex<HashMap<Uuid, (DateTime<Utc>, Arc<Relay>)>>;

/// The installation's relay and the tenants' SMTP providers, each provider's pool kept while
/// its settings stay the same.
pub struct Mailer {
    installation: Arc<Relay>,
    providers: RelayCache,
    pool_size: usize,
    /// Tenants' relays may be reached only at public addresses (production).
    public_only: bool,
    secrets: SecretsKey,
}

impl Mailer {
    pub fn from_config(config: &WorkerConfig) -> anyhow::Result<Self> {
        let from: Mailbox = config.email.from.parse().with_context(|| {
            format!(
                "HERALD_EMAIL_FROM is not a valid mailbox: {}",
                config.email.from
            )
        })?;
        let transport = match &config.email.smtp_url {
            // `smtp://user:pass@host:587?tls=required`, `smtps://host`: TLS mode and
            // credentials come from the URL. One idle connection per concurrent job.
            Some(url) => {
                Transport::Smtp(SmtpPool::new(Endpoint::from_url(url)?, config.concurrency))
            }
            None if config.environment.is_development() => {
                std::fs::create_dir_all(&config.email_dir)
                    .with_context(|| format!("cannot create {}", config.email_dir.display()))?;
                tracing::info!(dir = %config.email_dir.display(), "SMTP_URL unset: writing emails as .eml files");
                Transport::Files(AsyncFileTransport::new(&config.email_dir))
            }
            None => bail!("SMTP_URL is required when HERALD_ENV=production"),
        };
        Ok(Self {
            installation: Arc::new(Relay {
                name: INSTALLATION_RELAY.to_owned(),
                transport,
                from,
            }),
            providers: Mutex::new(HashMap::new()),
            pool_size: config.concurrency,
            public_only: !config.environment.is_development(),
            secrets: config.secrets.clone(),
        })
    }

    /// The relays to try for the tenant, in order: its enabled SMTP providers by priority, or
    /// the installation's relay when it has none. A provider whose settings cannot be read is
    /// skipped (and logged): the next one may still deliver.
    async fn relays(&self, deps: &Deps, tenant_id: Uuid) -> Result<Vec<Arc<Relay>>, BoxDynError> {
        let stored = {
            let mut conn = deps.db.acquire().await?;
            providers::enabled(&mut conn, tenant_id, ProviderKind::Smtp).await?
        };
        if stored.is_empty() {
            return Ok(vec![self.installation.clone()]);
        }
        let mut relays = Vec::with_capacity(stored.len());
        for provider in stored {
            let (id, updated_at) = (provider.id, provider.updated_at);
            if let Some(relay) = self.cached(id, updated_at) {
                relays.push(relay);
                continue;
            }
            match self.relay(tenant_id, provider) {
                Ok(relay) => {
                    let relay = Arc::new(relay);
                    let mut cache = self.providers.lock().expect("relay cache");
                    cache.insert(id, (updated_at, relay.clone()));
                    relays.push(relay);
                }
                Err(error) => {
                    tracing::error!(%tenant_id, provider_id = %id, %error, "SMTP provider skipped: its settings cannot be used");
                }
            }
        }
        Ok(relays)
    }

    fn cached(&self, id: Uuid, updated_at: DateTime<Utc>) -> Option<Arc<Relay>> {
        let cache = self.providers.lock().expect("relay cache");
        cache
            .get(&id)
            .filter(|(at, _)| *at == updated_at)
            .map(|(_, relay)| relay.clone())
    }

    fn relay(&self, tenant_id: Uuid, provider: providers::StoredProvider) -> anyhow::Result<Relay> {
        let provider = provider.open(tenant_id, &self.secrets)?;
        let ProviderSettings::Smtp(config, secret) = provider.settings else {
            bail!("not an SMTP provider");
        };
        let mut endpoint = Endpoint::from_url(&secret.url)?;
        if self.public_only {
            endpoint = endpoint.public_only();
        }
        Ok(Relay {
            name: provider.name,
            transport: Transport::Smtp(SmtpPool::new(endpoint, self.pool_size)),
            from: config.from.parse().context("the provider's from address")?,
        })
    }
}

/// What an email job needs: the worker's connections and the relays.
#[derive(Clone)]
pub struct Mailing {
    pub deps: Deps,
    pub mailer: Arc<Mailer>,
}

pub async fn send_email(job: Dispatch, mailing: Data<Mailing>) -> Result<(), BoxDynError> {
    // Run apart from the job's future: a worker rebuilt after a backend error (or a job past
    // its timeout) drops its running jobs (`crate::supervise`), and a send dropped between the
    // body and recording its outcome could be neither retried nor reported. The spawned send
    // finishes and records either way.
    let Mailing { deps, mailer } = (*mailing).clone();
    tokio::spawn(async move { send(&job.key(), &deps, &mailer).await }).await?
}

async fn send(key: &DeliveryKey, deps: &Deps, mailer: &Mailer) -> Result<(), BoxDynError> {
    // Claimed and committed before any server is contacted: a second run finds nothing to do.
    let claimed = {
        let mut conn = deps.db.acquire().await?;
        deliveries::claim(&mut conn, key).await?
    };
    let Some(attempt) = claimed else {
        return Ok(());
    };
    // No database connection is held while talking to a relay: jobs waiting on mail servers
    // would otherwise cap the worker at the pool's size (HERALD_DB_MAX_CONNECTIONS).
    let relays = mailer.relays(deps, key.tenant_id).await?;
    let sent = try_relays(key, deps, &attempt, &relays).await;
    let (provider, result) = match sent {
        Tried::Stop => return Ok(()),
        Tried::Done { provider, result } => (provider, result),
    };
    let max_attempts = deps.config.email_max_attempts;
    let outcome = match &result {
        Ok(()) => Outcome::Sent {
            provider: provider.unwrap_or(INSTALLATION_RELAY),
        },
        Err(failure) if failure.permanent || attempt.attempt >= max_attempts => Outcome::Failed {
            provider,
            error: &failure.message,
        },
        Err(failure) => Outcome::Retrying {
            provider,
            error: &failure.message,
        },
    };
    // Once the email is out only recording that remains, so a database blip must not turn it
    // into `Failed` (the sweep fails sends left `Sending`) or a second send.
    outcome::record(deps, key, attempt.attempt, &outcome).await?;
    tracing::info!(notification_id = %key.notification_id, attempt = attempt.attempt, ?outcome, "email");
    outcome::job_result(&outcome)
}

/// How trying the relays ended.
enum Tried<'a> {
    /// The claim was taken back before the body: the new attempt sends it.
    Stop,
    /// Sent, or failed: through `provider` (the relay that got furthest).
    Done {
        provider: Option<&'a str>,
        result: Result<(), SendFailure>,
    },
}

/// Tries each relay in order until one takes the message. A failure before the body that is
/// not the recipient's (refused or timed-out connections, 4xx, a relay refusing the sender)
/// moves on to the next relay at once; a recipient refused for good, or anything after the
/// body went, ends the attempt.
async fn try_relays<'a>(
    key: &DeliveryKey,
    deps: &Deps,
    attempt: &Attempt,
    relays: &'a [Arc<Relay>],
) -> Tried<'a> {
    let mut last = SendFailure::transient("no SMTP provider of this tenant is usable");
    let mut provider = None;
    for relay in relays {
        provider = Some(relay.name.as_str());
        match relay.prepare(&attempt.address, &attempt.notification).await {
            Ok(handover) => {
                return match outcome::mark_handover(deps, key, attempt.attempt, &relay.name).await {
                    Ok(true) => Tried::Done {
                        provider,
                        result: handover.deliver().await,
                    },
                    Ok(false) => {
                        // The sweep took the claim back (its lease ran out) and queued the email
                        // again. Dropping the handover closes the connection before the body,
                        // so the server discards this one.
                        tracing::warn!(notification_id = %key.notification_id, attempt = attempt.attempt, "claim taken back before the body was sent; leaving the email to its new attempt");
                        Tried::Stop
                    }
                    Err(error) => Tried::Done {
                        provider,
                        result: Err(SendFailure::transient(format!(
                            "could not record that the email is being sent: {error}"
                        ))),
                    },
                };
            }
            Err(failure) if failure.recipient_refused => {
                return Tried::Done {
                    provider,
                    result: Err(failure),
                };
            }
            Err(failure) => {
                tracing::info!(notification_id = %key.notification_id, relay = %relay.name, error = %failure.message, "relay could not take the email; trying the next");
                last = failure;
            }
        }
    }
    Tried::Done {
        provider,
        result: Err(last),
    }
}
