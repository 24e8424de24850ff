//! End-to-end test support: each test gets its own PostgreSQL database (cloned from a migrated
//! template), its own Redis key prefix, and real Herald processes on free ports — so tests run
//! in parallel and see exactly what a client would.

pub mod audience;
pub mod broadcasts;
pub mod chaos;
pub mod chat;
pub mod database;
pub mod events;
pub mod hostile_html;
pub mod hub;
pub mod process;
pub mod raw_hub;
pub mod redis_server;
pub mod signalr;
pub mod smtp;
pub mod split_proxy;
pub mod test_app;
pub mod tokens;

pub use test_app::{Tenant, TestApp};

/// The HS256 secret every test process signs with, so tests can forge tokens on purpose.
pub const TEST_JWT_SECRET: &str = "herald-test-secret-0123456789abcdef";
/// `HERALD_SECRETS_KEY` of every test process (32 bytes, base64), so each one opens what
/// another sealed without a key file in the working directory.
pub const TEST_SECRETS_KEY: &str = "aGVyYWxkLXRlc3Qtc2VjcmV0cy1rZXktMDEyMzQ1Njc=";

/// PostgreSQL server URL on a maintenance database (`scripts/test` exports it).
pub fn pg_admin_url() -> String {
    std::env::var("HERALD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}
