//! Herald's shared library: everything the API, hub, workers and admin CLI have in common.
//! It knows nothing of HTTP (no poem here), so workers stay free of the web stack.

pub mod auth;
pub mod chat_fanout;
pub mod config;
pub mod db;
pub mod domain;
pub mod events;
pub mod health;
pub mod jobs;
pub mod net;
pub mod process;
pub mod redact;
pub mod redis_conn;
pub mod secrets;
pub mod shutdown;
pub mod telemetry;
