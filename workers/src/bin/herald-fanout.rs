//! `herald-fanout`: delivers notifications (`Deliver`) and fans out broadcasts (`FanOut`) and
//! chat broadcasts (`ChatFanOut`).

use std::process::ExitCode;

use apalis::prelude::*;
use herald_shared::jobs::{ChatFanOut, Deliver, FanOut, Queue};
use herald_workers::runtime::{self, Deps, SHUTDOWN_GRACE, worker_name};
use herald_workers::wake::Wakers;
use herald_workers::{chat_fanout, deliver, fanout};

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
        &[Queue::Deliver, Queue::FanOut, Queue::ChatFanOut],
    );
    let concurrency = deps.config.concurrency;
    let (deliver_deps, deliver_wakers) = (deps.clone(), wakers.clone());
    let (fanout_deps, fanout_wakers) = (deps.clone(), wakers.clone());
    let (chat_deps, chat_wakers) = (deps.clone(), wakers);
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
        .register(move |_| {
            WorkerBuilder::new(worker_name("chatfanout"))
                .backend(
                    chat_deps
                        .queues
                        .worker_storage::<ChatFanOut>(Queue::ChatFanOut, concurrency)
                        .poll_with_strategy(chat_wakers.strategy(Queue::ChatFanOut)),
                )
                .data(chat_deps.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(3))
                .enable_tracing()
                .build(chat_fanout::chat_fan_out)
        })
        .shutdown_timeout(SHUTDOWN_GRACE)
        .run_with_signal(async {
            herald_shared::shutdown::signal().await;
            Ok(())
        })
        .await?;
    Ok(())
}
