//! `herald-hub`: Herald's SignalR hub as a process of its own.

use herald_api::hub::node::HubNode;
use herald_shared::config::ApiConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    herald_shared::process::run("herald-hub", ApiConfig::hub_from_env(), |config| async {
        HubNode::build(config).await?.run_until_stopped().await
    })
    .await
}
