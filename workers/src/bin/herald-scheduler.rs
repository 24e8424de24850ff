//! `herald-scheduler`: every minute (`HERALD_SCHEDULER_CRON`), queues what comes due and
//! sweeps stalled work. Several may run at once.

use std::process::ExitCode;
use std::str::FromStr;

use apalis::prelude::*;
use apalis_cron::CronScheduler;
use herald_shared::config::WorkerConfig;
use herald_workers::runtime::{self, Deps, worker_name};
use herald_workers::scheduler;
use herald_workers::supervise::{Shutdown, supervise};

const BINARY: &str = "herald-scheduler";

#[tokio::main]
async fn main() -> ExitCode {
    herald_shared::process::run(BINARY, WorkerConfig::from_env(), run).await
}

async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    let schedule = cron::Schedule::from_str(&config.scheduler_cron)?;
    let deps = Deps::connect(config).await?;
    runtime::serve_health(&deps)?;
    // Catch up at once after downtime rather than at the next tick.
    if let Err(error) = scheduler::run(&deps).await {
        tracing::warn!(%error, "startup tick failed");
    }
    let shutdown = Shutdown::on_signal();
    supervise("scheduler", shutdown, || {
        let (deps, schedule) = (deps.clone(), schedule.clone());
        Monitor::new().register(move |_| {
            WorkerBuilder::new(worker_name("scheduler"))
                .backend(CronScheduler::new(schedule.clone()))
                .data(deps.clone())
                .enable_tracing()
                .build(scheduler::tick)
        })
    })
    .await;
    Ok(())
}
