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
    let max_attempts = deps.config.email_max_attempts;
    match outcome {
        Ok(()) => {
            // The email is out: only recording that remains, so a database blip must not turn
            // it into `Failed` (the sweep fails sends left `Sending`) or a second send.
            record_outcome(&deps, &job, &Outcome::Sent).await?;
            tracing::info!(notification_id = %job.notification_id, attempt = attempt.attempt, "email sent");
            Ok(())
        }
        Err(failure) if failure.permanent || attempt.attempt >= max_attempts => {
            let outcome = Outcome::Failed {
                retries: attempt.attempt - 1,
                error: &failure.message,
            };
            record_outcome(&deps, &job, &outcome).await?;
            tracing::warn!(notification_id = %job.notification_id, attempt = attempt.attempt, error = %failure.message, "email failed");
            // Abort, or apalis-redis would keep re-running the job (its Lua script retries failed jobs up to 25 times).
            Err(AbortError::new(failure.message).into())
        }
        Err(failure) => {
            let outcome = Outcome::Retrying {
                attempts: attempt.attempt,
                error: &failure.message,
            };
            record_outcome(&deps, &job, &outcome).await?;
            tracing::info!(notification_id = %job.notification_id, attempt = attempt.attempt, error = %failure.message, "email will be retried");
            Err(failure.message.into())
        }
    }
}

/// What became of one send, to record on the email delivery.
#[derive(Debug)]
enum Outcome<'a> {
    Sent,
    Retrying { attempts: i32, error: &'a str },
    Failed { retries: i32, error: &'a str },
}

/// First pause before recording an outcome again; it doubles up to [`RECORD_MAX_DELAY`].
const RECORD_FIRST_DELAY: Duration = Duration::from_millis(100);
const RECORD_MAX_DELAY: Duration = Duration::from_secs(5);
/// Tries to record one outcome: 70 s of pauses (plus each try's connect timeout, so one and a
/// half to three minutes of PostgreSQL being unreachable), far inside the sweep's 10 minutes
/// before it fails a send left `Sending`.
const RECORD_ATTEMPTS: u32 = 20;

/// Records a send's outcome, retrying with backoff while PostgreSQL is unreachable.
///
/// The row is `Sending` until then, so no other run of the job sends again. If PostgreSQL stays
/// away past every try, the job ends for good (`AbortError`: a retry would find the row still
/// claimed and send nothing) and the sweep later fails the row with its "interrupted" message.
async fn record_outcome(
    deps: &Deps,
    job: &SendEmail,
    outcome: &Outcome<'_>,
) -> Result<(), BoxDynError> {
    let mut delay = RECORD_FIRST_DELAY;
    let mut tries = 0;
    loop {
        tries += 1;
        match try_record(deps, job, outcome).await {
            Ok(()) => return Ok(()),
            Err(error) if tries < RECORD_ATTEMPTS => {
                tracing::warn!(notification_id = %job.notification_id, ?outcome, %error, tries, "could not record the email's outcome; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RECORD_MAX_DELAY);
            }
            Err(error) => {
                tracing::error!(notification_id = %job.notification_id, ?outcome, %error, "gave up recording the email's outcome");
                return Err(AbortError::new(error).into());
            }
        }
    }
}

async fn try_record(deps: &Deps, job: &SendEmail, outcome: &Outcome<'_>) -> sqlx::Result<()> {
    let mut conn = deps.db.acquire().await?;
    let (tenant_id, id) = (job.tenant_id, job.notification_id);
    match *outcome {
        Outcome::Sent => email_deliveries::mark_sent(&mut conn, tenant_id, id).await,
        Outcome::Retrying { attempts, error } => {
            email_deliveries::mark_retrying(&mut conn, tenant_id, id, attempts, error).await
        }
        Outcome::Failed { retries, error } => {
            email_deliveries::mark_failed(&mut conn, tenant_id, id, retries, error).await
        }
    }
}
