//! The one way a queue gets a worker: [`run_queue`] builds it from a [`QueuePolicy`], so every
//! queue has a timeout, retries with backoff, a wake-up strategy, a tracing span naming the
//! tenant, and supervision (rebuilt when Redis fails it) without a binary spelling them out.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use herald_shared::jobs::{Queue, WorkItem};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::runtime::{Deps, worker_name};
use crate::supervise::{Shutdown, supervise};
use crate::wake::Wakers;

/// How one queue's jobs run.
#[derive(Clone)]
pub struct QueuePolicy {
    /// Names the worker, its span and its log lines.
    pub kind: &'static str,
    pub queue: Queue,
    /// Attempts after the first; a job failing them all stays failed in Redis, and the
    /// scheduler's sweep redoes the work from PostgreSQL if it is still open.
    pub retries: usize,
    /// Pause before the first retry, doubling up to `longest_backoff`.
    pub first_backoff: Duration,
    pub longest_backoff: Duration,
    /// A job running longer fails (and is retried): a stuck peer must not hold a worker slot.
    pub timeout: Duration,
    /// Backoff without jitter keeps retries on a schedule tests and operators can predict.
    pub jitter: f64,
}

impl QueuePolicy {
    /// The database-only jobs (deliver, fan-out, chat fan-out): each attempt is one or a few
    /// short transactions, redone harmlessly, so retry soon and give up on a hung one quickly.
    pub fn database_job(kind: &'static str, queue: Queue, timeout: Duration) -> Self {
        Self {
            kind,
            queue,
            retries: 3,
            first_backoff: Duration::from_millis(200),
            longest_backoff: Duration::from_secs(5),
            timeout,
            jitter: 0.5,
        }
    }

    fn backoff(&self) -> anyhow::Result<ExponentialBackoff> {
        let longest = self.longest_backoff.max(self.first_backoff);
        let mut maker = ExponentialBackoffMaker::new(
            self.first_backoff,
            longest,
            self.jitter,
            HasherRng::default(),
        )
        .with_context(|| format!("invalid backoff for the {} queue", self.kind))?;
        Ok(maker.make_backoff())
    }
}

/// Runs `handler` on `policy.queue` until shutdown, with `data` as its `Data<D>`.
pub async fn run_queue<J, D, H, Fut>(
    policy: QueuePolicy,
    deps: &Deps,
    wakers: &Wakers,
    shutdown: Shutdown,
    data: D,
    handler: H,
) -> anyhow::Result<()>
where
    J: WorkItem + Clone + Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
    D: Clone + Send + Sync + 'static,
    H: Fn(J, Data<D>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxDynError>> + Send + 'static,
{
    policy.backoff()?; // refuse a bad policy at start, not at the first retry
    let concurrency = deps.config.concurrency;
    supervise(policy.kind, shutdown, || {
        let (deps, wakers, data) = (deps.clone(), wakers.clone(), data.clone());
        let (policy, handler) = (policy.clone(), handler.clone());
        Monitor::new().register(move |_| {
            let (handler, kind) = (handler.clone(), policy.kind);
            let traced = move |job: J, data: Data<D>| {
                let span = tracing::info_span!("job", queue = kind, tenant_id = %job.tenant_id());
                let attempt = handler(job, data);
                async move {
                    let outcome = attempt.await;
                    if let Err(error) = &outcome {
                        // Inside the span: the line names the tenant and queue of the failure.
                        tracing::warn!(%error, "job attempt failed; retrying with backoff");
                    }
                    outcome
                }
                .instrument(span)
            };
            let backoff = policy.backoff().expect("checked before the first worker");
            WorkerBuilder::new(worker_name(policy.kind))
                .backend(
                    deps.queues
                        .worker_storage::<J>(policy.queue, concurrency)
                        .poll_with_strategy(wakers.strategy(policy.queue)),
                )
                .data(data.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(policy.retries).with_backoff(backoff))
                .timeout(policy.timeout)
                .enable_tracing()
                .build(traced)
        })
    })
    .await;
    Ok(())
}
