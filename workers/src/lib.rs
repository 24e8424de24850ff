//! Herald's queue workers: one module per job kind, one thin binary per process
//! (`herald-fanout` runs `Deliver` and `FanOut`, `herald-email` runs email `Dispatch` jobs,
//! `herald-scheduler` ticks every minute).

pub mod chat_fanout;
pub mod deliver;
pub mod email;
pub mod fanout;
pub mod outcome;
pub mod register;
pub mod runtime;
pub mod scheduler;
pub mod smtp;
pub mod supervise;
pub mod wake;
