//! `herald-api`: the REST API (and Swagger UI) of Herald.

use herald_api::Application;
use herald_shared::config::ApiConfig;
use herald_shared::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match ApiConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("herald-api: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let result = async { Application::build(config).await?.run_until_stopped().await }.await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("herald-api: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
