//! `herald-fanout`: delivers notifications (`Deliver`) and fans out broadcasts (`FanOut`) and
//! chat broadcasts (`ChatFanOut`).

use std::process::ExitCode;

use apalis::prelude::*;
use herald_shared::jobs::{ChatFanOut, Deliver, FanOut, Queue};
use herald_workers::runtime::{self, Deps, worker_name};
use herald_workers::supervise::{Shutdown, supervise};
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
    let shutdown = Shutdown::on_signal();
    let wakers = Wakers::default();
    wakers.listen(
        &deps.config.redis.url,
        deps.queues.prefix(),
        &[Queue::Deliver, Queue::FanOut, Queue::ChatFanOut],
    );
    let concurrency = deps.config.concurrency;
    // One supervised worker per queue: each is rebuilt on its own when Redis fails it.
    let deliver_worker = supervise("deliver", shutdown.clone(), || {
        let (deps, wakers) = (deps.clone(), wakers.clone());
        Monitor::new().register(move |_| {
            WorkerBuilder::new(worker_name("deliver"))
                .backend(
                    deps.queues
                        .worker_storage::<Deliver>(Queue::Deliver, concurrency)
                        .poll_with_strategy(wakers.strategy(Queue::Deliver)),
                )
                .data(deps.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(3))
                .enable_tracing()
                .build(deliver::deliver)
        })
    });
    let fanout_worker = supervise("fanout", shutdown.clone(), || {
        let (deps, wakers) = (deps.clone(), wakers.clone());
        Monitor::new().register(move |_| {
            WorkerBuilder::new(worker_name("fanout"))
                .backend(
                    deps.queues
                        .worker_storage::<FanOut>(Queue::FanOut, concurrency)
                        .poll_with_strategy(wakers.strategy(Queue::FanOut)),
                )
                .data(deps.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(3))
                .enable_tracing()
                .build(fanout::fan_out)
        })
    });
    let chat_worker = supervise("chatfanout", shutdown, || {
        let (deps, wakers) = (deps.clone(), wakers.clone());
        Monitor::new().register(move |_| {
            WorkerBuilder::new(worker_name("chatfanout"))
                .backend(
                    deps.queues
                        .worker_storage::<ChatFanOut>(Queue::ChatFanOut, concurrency)
                        .poll_with_strategy(wakers.strategy(Queue::ChatFanOut)),
                )
                .data(deps.clone())
                .concurrency(concurrency)
                .retry(RetryPolicy::retries(3))
                .enable_tracing()
                .build(chat_fanout::chat_fan_out)
        })
    });
    tokio::join!(deliver_worker, fanout_worker, chat_worker);
    Ok(())
}
