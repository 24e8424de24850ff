//! `herald-admin`: operator CLI (migrations, tenants, API keys, the OpenAPI document).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use herald_api::admin::{self, ApiKeyCommand, TenantCommand};
use herald_shared::config::{DatabaseConfig, Env, Environment, LogFormat};
use herald_shared::telemetry;

#[derive(Parser)]
#[command(
    name = "herald-admin",
    version,
    about = "Operate a Herald installation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Print the OpenAPI document (JSON) the API serves.
    Openapi,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        println!("{}", herald_api::openapi_json());
        return ExitCode::SUCCESS;
    }
    let mut env = Env::from_process();
    let environment = Environment::read(&mut env);
    let database = DatabaseConfig::read(&mut env, environment);
    let log_format = LogFormat::read(&mut env);
    let database = match env.finish(database) {
        Ok(database) => database,
        Err(error) => {
            eprintln!("herald-admin: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(log_format);
    let result = match cli.command {
        Command::Migrate => admin::migrate(&database).await,
        Command::Tenant(command) => admin::tenant(&database, command).await,
        Command::Apikey(command) => admin::apikey(&database, command).await,
        Command::Openapi => unreachable!("handled before connecting"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("herald-admin: {error:#}");
            ExitCode::FAILURE
        }
    }
}
