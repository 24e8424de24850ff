//! The `SendEmail` job: one email per notification at most, retried on transient failures,
//! and sent again after a dead worker only when the server was never handed the message.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use apalis::prelude::{AbortError, BoxDynError, Data};
use herald_shared::config::WorkerConfig;
use herald_shared::db::email_deliveries::{self, Attempt};
use herald_shared::domain::Notification;
use herald_shared::jobs::SendEmail;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

use crate::runtime::Deps;
use crate::smtp::{AwaitingBody, Endpoint, SendFailure, SmtpPool};

/// Where emails go: our pool of SMTP connections, or `.eml` files in development.
pub struct Mailer {
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
        Ok(Self { transport, from })
    }

    /// Everything up to the point of no return: composing the message and, over SMTP, the
    /// envelope commands until the server waits for the body.
    async fn prepare(
        &self,
        to: &str,
        notification: &Notification,
    ) -> Result<Handover<'_>, SendFailure> {
        let message = self.compose(to, notification).map_err(|e| SendFailure {
            permanent: true,
            message: format!("cannot compose the email: {e}"),
        })?;
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
        let html_body = notification.html();
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

/// What an email job needs: the worker's connections and the SMTP mailer.
#[derive(Clone)]
pub struct Mailing {
    pub deps: Deps,
    pub mailer: Arc<Mailer>,
}

pub async fn send_email(job: SendEmail, mailing: Data<Mailing>) -> Result<(), BoxDynError> {
    // Run apart from the job's future: a worker rebuilt after a backend error (or a job past
    // its timeout) drops its running jobs (`crate::supervise`), and a send dropped between the
    // body and recording its outcome could be neither retried nor reported. The spawned send
    // finishes and records either way.
    let Mailing { deps, mailer } = (*mailing).clone();
    tokio::spawn(async move { send(&job, &deps, &mailer).await }).await?
}

async fn send(job: &SendEmail, deps: &Deps, mailer: &Mailer) -> Result<(), BoxDynError> {
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
    let outcome = match mailer.prepare(&attempt.email, &attempt.notification).await {
        Ok(handover) => match mark_data_started(deps, job, &attempt).await {
            Ok(true) => handover.deliver().await,
            Ok(false) => {
                // The sweep took the claim back (its lease ran out) and queued the email again:
                // the new attempt sends it. Dropping the handover closes the connection
                // before the body, so the server discards this one.
                tracing::warn!(notification_id = %job.notification_id, attempt = attempt.attempt, "claim taken back before the body was sent; leaving the email to its new attempt");
                return Ok(());
            }
            Err(error) => Err(SendFailure::transient(format!(
                "could not record that the email is being sent: {error}"
            ))),
        },
        Err(failure) => Err(failure),
    };
    let max_attempts = deps.config.email_max_attempts;
    match outcome {
        Ok(()) => {
            // The email is out: only recording that remains, so a database blip must not turn
            // it into `Failed` (the sweep fails sends left `Sending`) or a second send.
            record_outcome(deps, job, attempt.attempt, &Outcome::Sent).await?;
            tracing::info!(notification_id = %job.notification_id, attempt = attempt.attempt, "email sent");
            Ok(())
        }
        Err(failure) if failure.permanent || attempt.attempt >= max_attempts => {
            let outcome = Outcome::Failed {
                error: &failure.message,
            };
            record_outcome(deps, job, attempt.attempt, &outcome).await?;
            tracing::warn!(notification_id = %job.notification_id, attempt = attempt.attempt, error = %failure.message, "email failed");
            // Abort, or apalis-redis would keep re-running the job (its Lua script retries failed jobs up to 25 times).
            Err(AbortError::new(failure.message).into())
        }
        Err(failure) => {
            let outcome = Outcome::Retrying {
                error: &failure.message,
            };
            record_outcome(deps, job, attempt.attempt, &outcome).await?;
            tracing::info!(notification_id = %job.notification_id, attempt = attempt.attempt, error = %failure.message, "email will be retried");
            Err(failure.message.into())
        }
    }
}

/// Marks the claim as past the point of no return, once: a failure here is a failure before
/// the body, so it is retried rather than risk sending without the mark.
async fn mark_data_started(deps: &Deps, job: &SendEmail, attempt: &Attempt) -> sqlx::Result<bool> {
    let mut conn = deps.db.acquire().await?;
    email_deliveries::mark_data_started(
        &mut conn,
        job.tenant_id,
        job.notification_id,
        attempt.attempt,
    )
    .await
}

/// What became of one send, to record on the email delivery.
#[derive(Debug)]
enum Outcome<'a> {
    Sent,
    Retrying { error: &'a str },
    Failed { error: &'a str },
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
    attempt: i32,
    outcome: &Outcome<'_>,
) -> Result<(), BoxDynError> {
    let mut delay = RECORD_FIRST_DELAY;
    let mut tries = 0;
    loop {
        tries += 1;
        match try_record(deps, job, attempt, outcome).await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                // Only the sweep changes a claimed row: it took this claim back after its lease
                // (the attempt outlived it without reaching DATA) or gave up on it.
                tracing::warn!(notification_id = %job.notification_id, attempt, ?outcome, "the claim was no longer this attempt's; outcome not recorded");
                return Err(AbortError::new("claim taken back by the sweep").into());
            }
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

async fn try_record(
    deps: &Deps,
    job: &SendEmail,
    attempt: i32,
    outcome: &Outcome<'_>,
) -> sqlx::Result<bool> {
    let mut conn = deps.db.acquire().await?;
    let (tenant_id, id) = (job.tenant_id, job.notification_id);
    match *outcome {
        Outcome::Sent => email_deliveries::mark_sent(&mut conn, tenant_id, id, attempt).await,
        Outcome::Retrying { error } => {
            email_deliveries::mark_retrying(&mut conn, tenant_id, id, attempt, error).await
        }
        Outcome::Failed { error } => {
            email_deliveries::mark_failed(&mut conn, tenant_id, id, attempt, error).await
        }
    }
}
