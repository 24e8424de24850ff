//! `herald-fanout`: delivers notifications (`Deliver`) and fans out broadcasts (`FanOut`).

use std::process::ExitCode;

use apalis::prelude::*;
use herald_shared::jobs::{Deliver, FanOut, Queue};
use herald_workers::runtime::{self, Deps, SHUTDOWN_GRACE, worker_name};
use herald_workers::wake::Wakers;
use herald_workers::{deliver, fanout};

const BINARY: &str = "herald-fanout";

#[tokio::main]
async fn main() -> ExitCode {
    match runtime::configure(BINARY) {
        Ok(config) => runtime::exit(BINARY, run(config).await),
        Err(code) => code,
    }
}

async fn run(config: herald_shared::config::WorkerConfig) -> anyhow::Result<()> {
    let deps = Deps::connect(config).await?;
    runtime::serve_health(&deps)?;
    let wakers = Wakers::default();
    wakers.listen(
        &deps.config.redis.url,
        deps.queues.prefix(),
        &[Queue::Deliver, Queue::FanOut],
    );
    let concurrency = deps.config.concurrency;
    let (deliver_deps, deliver_wakers) = (deps.clone(), wakers.clone());
    let (fanout_deps, fanout_wakers) = (deps.clone(), wakers);
    Monitor::new()
        .register(move |_| {
            WorkerBuilder::new(worker_name("deliver"))
                .backend(
                    deliver_deps
                        .queues
                        .worker_storage::<Deliver>(Queue::Deliver, concurrency)
                        .poll_with_strategy(deliver_wakers.strategy(Queue::Deliver)),
                )
                .data(deliver_deps.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(3))
                .enable_tracing()
                .build(deliver::deliver)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name("fanout"))
                .backend(
                    fanout_deps
                        .queues
                        .worker_storage::<FanOut>(Queue::FanOut, concurrency)
                        .poll_with_strategy(fanout_wakers.strategy(Queue::FanOut)),
                )
                .data(fanout_deps.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(3))
                .enable_tracing()
                .build(fanout::fan_out)
        })
        .shutdown_timeout(SHUTDOWN_GRACE)
        .run_with_signal(async {
            herald_shared::shutdown::signal().await;
            Ok(())
        })
        .await?;
    Ok(())
}
