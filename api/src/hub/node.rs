//! `herald-hub`: the hub alone, as a node of its own. Same hub code as `herald-api`
//! mounts, plus `/healthz` and `/readyz`, so hub nodes scale apart from the REST API.

use std::net::SocketAddr;

use herald_shared::config::ApiConfig;
use poem::{EndpointExt, Route, get};

use crate::{BoundServer, health};

/// A bound, ready-to-run hub node.
pub struct HubNode(BoundServer);

impl HubNode {
    /// Connects to the stores (the catch-up reads PostgreSQL), starts the Redis subscriber and
    /// binds the port.
    pub async fn build(config: ApiConfig) -> anyhow::Result<Self> {
        BoundServer::build(config).await.map(Self)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until SIGTERM or ctrl-c; then every client is told to reconnect and the node
    /// waits (bounded) for the goodbyes to go out.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(
            "listening on http://{} (the hub at ws://{}/tenant/{{tenantId}}/v1/hub)",
            self.local_addr(),
            self.local_addr()
        );
        self.0
            .serve(|state, hub| {
                super::mount(
                    Route::new()
                        .at("/healthz", get(health::healthz))
                        .at("/readyz", get(health::readyz)),
                )
                .data(state)
                .data(hub)
            })
            .await
    }
}
