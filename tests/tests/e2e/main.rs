//! Herald's end-to-end suite: the real binaries (`cargo build --workspace --bins`) against real
//! PostgreSQL, Redis, SMTP servers and the official SignalR client. One test binary, so the
//! suite links once; each area is a module. Run one area with `cargo test -p herald-tests --test
//! e2e hub::`, one test by its name.

mod api;
mod broadcasts;
mod channels;
mod chat;
mod hub;
mod notifications;
mod pipeline;
