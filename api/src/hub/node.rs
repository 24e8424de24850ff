//! `herald-hub`: the hub alone, as a node of its own. Same hub code as `herald-api`
//! mounts, plus `/healthz` and `/readyz`, so hub nodes scale apart from the REST API.

use std::net::SocketAddr;

use herald_shared::config::ApiConfig;
use poem::{EndpointExt, Route, get};

use super::Hub;
use crate::state::AppState;
use crate::{bind, connect_state, health, http_server, serve, timeouts};

/// A bound, ready-to-run hub node.
pub struct HubNode {
    acceptor: crate::listener::NoDelayAcceptor,
    local_addr: SocketAddr,
    state: AppState,
    hub: Hub,
    timeouts: http_server::Timeouts,
}

impl HubNode {
    /// Connects to the stores (the catch-up reads PostgreSQL), starts the Redis subscriber and
    /// binds the port.
    pub async fn build(config: ApiConfig) -> anyhow::Result<Self> {
        let state = connect_state(config).await?;
        let (acceptor, local_addr) = bind(&state.config.http)?;
        let hub = Hub::start(&state.config)?;
        hub.watch_credentials(state.revoked_keys.clone());
        Ok(Self {
            acceptor,
            local_addr,
            timeouts: timeouts(&state.config.http),
            hub,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until SIGTERM or ctrl-c; then every client is told to reconnect and the node
    /// waits (bounded) for the goodbyes to go out.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(
            "hub listening on ws://{}/tenant/{{tenantId}}/v1/hub",
            self.local_addr
        );
        let app = super::mount(
            Route::new()
                .at("/healthz", get(health::healthz))
                .at("/readyz", get(health::readyz)),
        )
        .data(self.state)
        .data(self.hub.clone());
        serve(self.acceptor, app, &self.hub, self.timeouts).await
    }
}
