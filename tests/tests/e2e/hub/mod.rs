//! The SignalR hub: the seed's client, the protocol subset, credentials, limits, catch-up and
//! several nodes.

mod across_nodes;
mod catch_up_seam;
mod credentials;
mod delivery;
mod limits;
mod nodes;
mod protocol;
mod pubsub_loss;
mod seed_client;
