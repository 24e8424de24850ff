//! `herald-fanout`: delivers notifications (`Deliver`) and fans out broadcasts (`FanOut`) and
//! chat broadcasts (`ChatFanOut`).

use std::process::ExitCode;

use std::time::Duration;

use herald_shared::config::WorkerConfig;
use herald_shared::jobs::Queue;
use herald_workers::register::{QueuePolicy, run_queue};
use herald_workers::runtime::{self, Deps};
use herald_workers::supervise::Shutdown;
use herald_workers::wake::Wakers;
use herald_workers::{chat_fanout, deliver, fanout};

const BINARY: &str = "herald-fanout";

/// A delivery is a couple of short transactions (plus waiting out a due time's last second).
const DELIVER_TIMEOUT: Duration = Duration::from_secs(30);
/// A chunk writes up to a few thousand rows in one statement and must commit well within its
/// commit budget; a minute means a database in trouble, and the retry or the sweep redoes it.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    herald_shared::process::run(BINARY, WorkerConfig::from_env(), run).await
}

async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    let deps = Deps::connect(config).await?;
    runtime::serve_health(&deps)?;
    let shutdown = Shutdown::on_signal();
    let wakers = Wakers::default();
    wakers.listen(
        &deps.config.redis.url,
        deps.queues.prefix(),
        &[Queue::Deliver, Queue::FanOut, Queue::ChatFanOut],
    );
    // One supervised worker per queue: each is rebuilt on its own when Redis fails it.
    let deliver_worker = run_queue(
        QueuePolicy::database_job("deliver", Queue::Deliver, DELIVER_TIMEOUT),
        &deps,
        &wakers,
        shutdown.clone(),
        deps.clone(),
        deliver::deliver,
    );
    let fanout_worker = run_queue(
        QueuePolicy::database_job("fanout", Queue::FanOut, CHUNK_TIMEOUT),
        &deps,
        &wakers,
        shutdown.clone(),
        deps.clone(),
        fanout::fan_out,
    );
    let chat_worker = run_queue(
        QueuePolicy::database_job("chatfanout", Queue::ChatFanOut, CHUNK_TIMEOUT),
        &deps,
        &wakers,
        shutdown,
        deps.clone(),
        chat_fanout::chat_fan_out,
    );
    let (delivered, fanned, chatted) = tokio::join!(deliver_worker, fanout_worker, chat_worker);
    delivered.and(fanned).and(chatted)
}
