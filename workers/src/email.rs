//! The `SendEmail` job: one email per notification at most, retried on transient failures.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use apalis::prelude::{AbortError, BoxDynError, Data};
use herald_shared::config::WorkerConfig;
use herald_shared::db::email_deliveries;
use herald_shared::domain::{Notification, html};
use herald_shared::jobs::SendEmail;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::runtime::Deps;

/// How long one SMTP exchange may take before it counts as a transient failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where emails go: a pooled SMTP connection, or `.eml` files in development.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Why an email was not sent, and whether trying again could help.
#[derive(Debug)]
pub struct SendFailure {
    pub permanent: bool,
    pub message: String,
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
            // `smtp://user:pass@host:587?tls=required`, `smtps://host`: lettre reads TLS mode and
            // credentials from the URL; the transport pools connections.
            // lettre keeps at most `max_size` idle connections (10 by default) and opens,
            // then QUITs, one more for every send beyond that: keep one per concurrent job.
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("SMTP_URL is not a usable SMTP URL")?
                    .timeout(Some(SMTP_TIMEOUT))
                    .pool_config(
                        PoolConfig::new()
                            .max_size(u32::try_from(config.concurrency).unwrap_or(u32::MAX)),
                    )
                    .build(),
            ),
            None if config.environment.is_development() => {
                std::fs::create_dir_all(&config.email_dir)
                    .with_context(|| format!("cannot create {}", config.email_dir.display()))?;
                tracing::info!(dir = %config.email_dir.display(), "SMTP_URL unset: writing emails as .eml files");
                Transport::Files(AsyncFileTransport::new(&config.email_dir))
            }
            None => bail!("SMTP_URL is required when HERALD_ENV=production"),
        };
        Ok(Self { transport, from })
    }

    pub async fn send(&self, to: &str, notification: &Notification) -> Result<(), SendFailure> {
        let message = self.compose(to, notification).map_err(|e| SendFailure {
            permanent: true,
            message: format!("cannot compose the email: {e}"),
        })?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| SendFailure {
                // 5xx is final; 4xx, refused connections and timeouts may pass later.
                permanent: e.is_permanent(),
                message: e.to_string(),
            }),
            Transport::Files(files) => {
                files
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|e| SendFailure {
                        permanent: false,
                        message: e.to_string(),
                    })
            }
        }
    }

    /// HTML and plain text alternatives, so every mail client shows something sensible.
    fn compose(&self, to: &str, notification: &Notification) -> anyhow::Result<Message> {
        let html_body = notification
            .html_content
            .clone()
            .unwrap_or_else(|| format!("<p>{}</p>", html::escape(&notification.message)));
        Ok(Message::builder()
            .from(self.from.clone())
            .to(herald_shared::domain::email::parse_mailbox(to).map_err(anyhow::Error::msg)?)
            .subject(&notification.subject)
            .multipart(MultiPart::alternative_plain_html(
                notification.message.clone(),
                html_body,
            ))?)
    }
}

pub async fn send_email(
    job: SendEmail,
    deps: Data<Deps>,
    mailer: Data<Arc<Mailer>>,
) -> Result<(), BoxDynError> {
    // Claimed and committed before SMTP is contacted: a second run finds nothing to do.
    let claimed = {
        let mut conn = deps.db.acquire().await?;
        email_deliveries::claim(&mut conn, job.tenant_id, job.notification_id).await?
    };
    let Some(attempt) = claimed else {
        return Ok(());
    };
    // No database connection is held during the SMTP exchange: jobs waiting on the mail
    // server would otherwise cap the worker at the pool's size (HERALD_DB_MAX_CONNECTIONS),
    // whatever its concurrency.
    let outcome = mailer.send(&attempt.email, &attempt.notification).await;
    let mut conn = deps.db.acquire().await?;
    let max_attempts = deps.config.email_max_attempts;
    match outcome {
        Ok(()) => {
            email_deliveries::mark_sent(&mut conn, job.tenant_id, job.notification_id).await?;
            tracing::info!(notification_id = %job.notification_id, attempt = attempt.attempt, "email sent");
            Ok(())
        }
        Err(failure) if failure.permanent || attempt.attempt >= max_attempts => {
            email_deliveries::mark_failed(
                &mut conn,
                job.tenant_id,
                job.notification_id,
                attempt.attempt - 1,
                &failure.message,
            )
            .await?;
            tracing::warn!(notification_id = %job.notification_id, attempt = attempt.attempt, error = %failure.message, "email failed");
            // Abort, or apalis-redis would keep re-running the job (STACK.md, trap 3).
            Err(AbortError::new(failure.message).into())
        }
        Err(failure) => {
            email_deliveries::mark_retrying(
                &mut conn,
                job.tenant_id,
                job.notification_id,
                attempt.attempt,
                &failure.message,
            )
            .await?;
            tracing::info!(notification_id = %job.notification_id, attempt = attempt.attempt, error = %failure.message, "email will be retried");
            Err(failure.message.into())
        }
    }
}
