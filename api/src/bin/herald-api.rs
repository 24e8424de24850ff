//! `herald-api`: the REST API (and Swagger UI) of Herald.

use herald_api::Application;
use herald_shared::config::ApiConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    herald_shared::process::run("herald-api", ApiConfig::from_env(), |config| async {
        Application::build(config).await?.run_until_stopped().await
    })
    .await
}
