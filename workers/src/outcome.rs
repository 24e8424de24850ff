//! Recording what became of a send, whatever the channel: retried while PostgreSQL is away,
//! because the row stays `Sending` until then and nothing else may send it.

use std::time::Duration;

use apalis::prelude::{AbortError, BoxDynError};
use herald_shared::db::deliveries::{self, DeliveryKey};

use crate::runtime::Deps;

/// What became of one send.
#[derive(Debug)]
pub enum Outcome<'a> {
    Sent {
        provider: &'a str,
    },
    Retrying {
        provider: Option<&'a str>,
        error: &'a str,
    },
    Failed {
        provider: Option<&'a str>,
        error: &'a str,
    },
    Skipped {
        reason: &'a str,
    },
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
/// If PostgreSQL stays away past every try, the job ends for good (`AbortError`: a retry would
/// find the row still claimed and send nothing) and the sweep later fails the row with its
/// "interrupted" message.
pub async fn record(
    deps: &Deps,
    key: &DeliveryKey,
    attempt: i32,
    outcome: &Outcome<'_>,
) -> Result<(), BoxDynError> {
    let mut delay = RECORD_FIRST_DELAY;
    let mut tries = 0;
    loop {
        tries += 1;
        match try_record(deps, key, attempt, outcome).await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                // Only the sweep changes a claimed row: it took this claim back after its lease
                // (the attempt outlived it without reaching the point of no return) or gave up.
                tracing::warn!(notification_id = %key.notification_id, channel = key.channel.as_str(), attempt, ?outcome, "the claim was no longer this attempt's; outcome not recorded");
                return Err(AbortError::new("claim taken back by the sweep").into());
            }
            Err(error) if tries < RECORD_ATTEMPTS => {
                tracing::warn!(notification_id = %key.notification_id, ?outcome, %error, tries, "could not record the send's outcome; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RECORD_MAX_DELAY);
            }
            Err(error) => {
                tracing::error!(notification_id = %key.notification_id, ?outcome, %error, "gave up recording the send's outcome");
                return Err(AbortError::new(error).into());
            }
        }
    }
}

async fn try_record(
    deps: &Deps,
    key: &DeliveryKey,
    attempt: i32,
    outcome: &Outcome<'_>,
) -> sqlx::Result<bool> {
    let mut conn = deps.db.acquire().await?;
    match *outcome {
        Outcome::Sent { provider } => {
            deliveries::mark_sent(&mut conn, key, attempt, provider).await
        }
        Outcome::Retrying { provider, error } => {
            deliveries::mark_retrying(&mut conn, key, attempt, provider, error).await
        }
        Outcome::Failed { provider, error } => {
            deliveries::mark_failed(&mut conn, key, attempt, provider, error).await
        }
        Outcome::Skipped { reason } => {
            deliveries::mark_skipped(&mut conn, key, attempt, reason).await
        }
    }
}

/// Marks the claim as past the point of no return, once, naming the provider it goes
/// through: a failure here is a failure before anything was handed over, so it is retried
/// rather than risk sending without the mark.
pub async fn mark_handover(
    deps: &Deps,
    key: &DeliveryKey,
    attempt: i32,
    provider: &str,
) -> sqlx::Result<bool> {
    let mut conn = deps.db.acquire().await?;
    deliveries::mark_data_started(&mut conn, key, attempt, provider).await
}

/// How a finished send ends its job: `Ok` when it is over (sent, skipped, failed for good —
/// `AbortError`, or apalis-redis would keep re-running it), an error for apalis to retry.
pub fn job_result(outcome: &Outcome<'_>) -> Result<(), BoxDynError> {
    match outcome {
        Outcome::Sent { .. } | Outcome::Skipped { .. } => Ok(()),
        Outcome::Failed { error, .. } => Err(AbortError::new(error.to_string()).into()),
        Outcome::Retrying { error, .. } => Err(error.to_string().into()),
    }
}
