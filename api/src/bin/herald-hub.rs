//! `herald-hub`: Herald's SignalR hub as a process of its own.

use herald_api::hub::node::HubNode;
use herald_shared::config::ApiConfig;
use herald_shared::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match ApiConfig::hub_from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("herald-hub: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let result = async { HubNode::build(config).await?.run_until_stopped().await }.await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("herald-hub: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
