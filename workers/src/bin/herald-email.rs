//! `herald-email`: sends email deliveries (`Dispatch` jobs of the email queue), retrying transient failures.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use herald_shared::config::WorkerConfig;
use herald_shared::jobs::Queue;
use herald_workers::email::{self, Mailer, Mailing};
use herald_workers::register::{QueuePolicy, run_queue};
use herald_workers::runtime::{self, Deps};
use herald_workers::supervise::Shutdown;
use herald_workers::wake::Wakers;

const BINARY: &str = "herald-email";

/// Longer than a send can take on its own timeouts (connect and greeting, the body, then
/// recording the outcome): the job only ever times out on a send that is already stuck, and
/// the send itself runs on in its own task and records its outcome.
const SEND_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> ExitCode {
    herald_shared::process::run(BINARY, WorkerConfig::from_env(), run).await
}

async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    let mailer = Arc::new(Mailer::from_config(&config)?);
    let deps = Deps::connect(config).await?;
    runtime::serve_health(&deps)?;
    let wakers = Wakers::default();
    wakers.listen(
        &deps.config.redis.url,
        deps.queues.prefix(),
        &[Queue::Email],
    );
    // Attempt n waits base × 2^(n-2) after attempt n-1 failed (no jitter: tests rely on the
    // schedule, and emails are few enough per recipient not to stampede).
    let first_backoff = Duration::from_millis(deps.config.email_backoff_base_ms.max(1));
    let retries = usize::try_from(deps.config.email_max_attempts - 1).unwrap_or(0);
    let policy = QueuePolicy {
        kind: "email",
        queue: Queue::Email,
        retries,
        first_backoff,
        longest_backoff: first_backoff * 2u32.saturating_pow(u32::try_from(retries).unwrap_or(0)),
        timeout: SEND_TIMEOUT,
        jitter: 0.0,
    };
    let mailing = Mailing {
        deps: deps.clone(),
        mailer,
    };
    let shutdown = Shutdown::on_signal();
    run_queue(policy, &deps, &wakers, shutdown, mailing, email::send_email).await
}
