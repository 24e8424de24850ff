//! What every long-running Herald binary's `main` does: read the configuration, start logging,
//! run, and turn the outcome into the exit code the Procfile runner acts on.

use std::future::Future;
use std::process::ExitCode;

use crate::config::{ApiConfig, ConfigError, LogFormat, WorkerConfig};

/// A process configuration: knows how its logs are written.
pub trait ProcessConfig {
    fn log_format(&self) -> LogFormat;
}

impl ProcessConfig for ApiConfig {
    fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

impl ProcessConfig for WorkerConfig {
    fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

/// Runs `binary`: bad settings print and exit with 2 (nothing started, so restarting cannot
/// help), a failure while running is logged and exits with 1, a clean stop exits with 0.
pub async fn run<C, F, Fut>(binary: &str, config: Result<C, ConfigError>, run: F) -> ExitCode
where
    C: ProcessConfig,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{binary}: {error}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(config.log_format());
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("{binary}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
