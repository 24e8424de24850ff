//! Channels beyond the inbox: targets, providers, and sends through real protocol peers.

mod providers;
mod targets;
