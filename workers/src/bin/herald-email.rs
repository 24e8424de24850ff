//! `herald-email`: sends notification emails (`SendEmail`), retrying transient failures.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use herald_shared::jobs::{Queue, SendEmail};
use herald_workers::email::{self, Mailer};
use herald_workers::runtime::{self, Deps, worker_name};
use herald_workers::supervise::{Shutdown, supervise};
use herald_workers::wake::Wakers;

const BINARY: &str = "herald-email";

#[tokio::main]
async fn main() -> ExitCode {
    match runtime::configure(BINARY) {
        Ok(config) => runtime::exit(BINARY, run(config).await),
        Err(code) => code,
    }
}

async fn run(config: herald_shared::config::WorkerConfig) -> anyhow::Result<()> {
    let mailer = Arc::new(Mailer::from_config(&config)?);
    let deps = Deps::connect(config).await?;
    runtime::serve_health(&deps)?;
    let wakers = Wakers::default();
    wakers.listen(
        &deps.config.redis.url,
        deps.queues.prefix(),
        &[Queue::Email],
    );
    let concurrency = deps.config.concurrency;
    // Attempt n waits base × 2^(n-2) after attempt n-1 failed (no jitter: tests rely on the
    // schedule, and emails are few enough per recipient not to stampede).
    let base = Duration::from_millis(deps.config.email_backoff_base_ms.max(1));
    let retries = usize::try_from(deps.config.email_max_attempts - 1).unwrap_or(0);
    let longest = base * 2u32.saturating_pow(u32::try_from(retries).unwrap_or(0));
    let backoff = ExponentialBackoffMaker::new(base, longest.max(base), 0.0, HasherRng::default())
        .context("invalid email backoff")?;
    let shutdown = Shutdown::on_signal();
    supervise("email", shutdown, || {
        let (deps, wakers, mailer, backoff) = (
            deps.clone(),
            wakers.clone(),
            mailer.clone(),
            backoff.clone(),
        );
        Monitor::new().register(move |_| {
            WorkerBuilder::new(worker_name("email"))
                .backend(
                    deps.queues
                        .worker_storage::<SendEmail>(Queue::Email, concurrency)
                        .poll_with_strategy(wakers.strategy(Queue::Email)),
                )
                .data(deps.clone())
                .data(mailer.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(retries).with_backoff(backoff.clone().make_backoff()))
                .enable_tracing()
                .build(email::send_email)
        })
    })
    .await;
    Ok(())
}
