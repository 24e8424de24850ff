//! Channels beyond the inbox: targets, providers, and sends through real protocol peers.

mod email_providers;
mod providers;
mod targets;
