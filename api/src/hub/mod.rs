//! The real-time hub: a WebSocket node speaking the ASP.NET Core SignalR JSON hub protocol at
//! `/tenant/{tenantId}/v1/hub`, so the official `@microsoft/signalr` clients connect unchanged
//! (the README's "Real-time hub" section). `herald-api` mounts it next to the REST API and
//! `herald-hub` runs it alone ([`node`]).
//!
//! - [`negotiate`]: `POST …/hub/negotiate` and the WebSocket upgrade, with their checks.
//! - [`connection`]: one connection's life; [`protocol`]: the wire format.
//! - [`registry`] and [`pubsub`]: which users are here, and their Redis subscriptions.
//! - [`catch_up`]: replaying missed events for `lastEventAt`.
//! - [`expiry`]: closing connections whose token expired or whose API key was revoked.

pub mod catch_up;
pub mod connection;
pub mod cors;
pub mod credentials;
pub mod expiry;
pub mod negotiate;
pub mod node;
pub mod outbox;
pub mod protocol;
pub mod pubsub;
pub mod registry;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use herald_shared::config::{ApiConfig, HubConfig};
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, post};
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::error::{Problem, problem_response, render_errors};
use registry::Registry;
use tokens::ConnectionTokens;

/// Where the hub is served; the negotiate route is this plus `/negotiate`.
pub const HUB_PATH: &str = "/tenant/:tenant_id/v1/hub";
const NEGOTIATE_PATH: &str = "/tenant/:tenant_id/v1/hub/negotiate";
/// Everything else under the hub (other transports' paths, typos): answered here, so such a
/// request, whose query may carry a token, never reaches the REST tree's URI-logging middleware.
const OTHER_HUB_PATHS: &str = "/tenant/:tenant_id/v1/hub/*rest";

/// This node's hub: cheap to clone, shared by every request and connection.
#[derive(Clone)]
pub struct Hub(Arc<Inner>);

struct Inner {
    config: HubConfig,
    redis_prefix: String,
    registry: Arc<Registry>,
    tokens: ConnectionTokens,
    /// Becomes true when the node stops: every connection says goodbye.
    shutdown: watch::Sender<bool>,
    /// Open connections, so shutdown can wait for their goodbyes.
    connections: watch::Sender<usize>,
}

impl Hub {
    /// Starts the node's Redis pub/sub task. It connects (and reconnects) in the background:
    /// until it is subscribed, new connections wait in their handshake.
    pub fn start(config: &ApiConfig) -> anyhow::Result<Self> {
        let client = herald_shared::redis_conn::client(config.redis.url.as_str())
            .context("REDIS_URL is invalid")?;
        let (registry, commands) = Registry::new(config.hub.max_queued_events);
        tokio::spawn(pubsub::run(client, registry.clone(), commands));
        Ok(Self(Arc::new(Inner {
            config: config.hub.clone(),
            redis_prefix: config.redis.prefix.clone(),
            registry,
            tokens: ConnectionTokens::new(config.jwt.secret.expose_secret().as_bytes()),
            shutdown: watch::Sender::new(false),
            connections: watch::Sender::new(0),
        })))
    }

    /// Starts the sweep that closes connections whose credential no longer holds.
    pub fn watch_credentials(&self, revoked: Arc<crate::revoked_keys::RevokedKeys>) {
        expiry::spawn_sweep(
            self.0.registry.clone(),
            revoked,
            self.0.config.credential_sweep,
        );
    }

    pub fn config(&self) -> &HubConfig {
        &self.0.config
    }

    pub(crate) fn redis_prefix(&self) -> &str {
        &self.0.redis_prefix
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.0.registry
    }

    pub(crate) fn tokens(&self) -> &ConnectionTokens {
        &self.0.tokens
    }

    pub(crate) fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.0.shutdown.subscribe()
    }

    /// Counts a connection until the returned guard is dropped.
    pub(crate) fn count_connection(&self) -> Counted {
        self.0.connections.send_modify(|open| *open += 1);
        Counted(self.clone())
    }

    /// Open WebSocket connections on this node.
    pub fn connections(&self) -> usize {
        *self.0.connections.borrow()
    }

    /// Users with at least one connection on this node.
    pub fn users(&self) -> usize {
        self.0.registry.user_count()
    }

    /// Tells every connection to send `{"type":7,"allowReconnect":true}` and close, so clients
    /// reconnect (to another node).
    pub fn shut_down(&self) {
        // Connections still opening watch the flag; open ones hear it through their outbox.
        self.0.shutdown.send_replace(true);
        self.0.registry.shut_down();
    }

    /// Waits for every connection to close, at most `timeout`; false if some did not.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let mut open = self.0.connections.subscribe();
        tokio::time::timeout(timeout, open.wait_for(|open| *open == 0))
            .await
            .is_ok()
    }
}

/// One open connection, counted while alive.
pub struct Counted(Hub);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.0.connections.send_modify(|open| *open -= 1);
    }
}

/// Adds the hub's routes. They stay out of the OpenAPI document (not REST operations) and log
/// without their query string, which may carry `access_token`. Needs `AppState` and [`Hub`]
/// as data.
pub fn mount(route: Route) -> Route {
    route
        .at(
            HUB_PATH,
            get(negotiate::connect)
                .around(render_errors)
                .with(catch_panic())
                .around(trace),
        )
        .at(
            NEGOTIATE_PATH,
            post(negotiate::negotiate)
                .around(crate::body::limit_body)
                .around(render_errors)
                .with(catch_panic())
                .around(cors::cors)
                .around(trace),
        )
        .at(OTHER_HUB_PATHS, not_found.around(trace))
}

#[poem::handler]
fn not_found() -> Response {
    problem_response(Problem::new(
        poem::http::StatusCode::NOT_FOUND,
        "No such hub endpoint: the hub serves WebSocket connections at …/hub and negotiate at \
         …/hub/negotiate.",
    ))
}

/// A panic in a hub handler answers the same 500 problem body as the REST API.
fn catch_panic() -> CatchPanic<fn(Box<dyn std::any::Any + Send>) -> Response> {
    CatchPanic::new().with_handler(panic_response as fn(_) -> _)
}

fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response {
    problem_response(Problem::new(
        poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        "An unexpected error occurred. It has been logged.",
    ))
}

/// Request logging for hub routes: method and path only, never the query.
async fn trace<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let remote_addr = req.remote_addr().to_string();
    let started = Instant::now();
    let response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    tracing::info!(
        remote_addr,
        %method,
        path,
        status = response.status().as_u16(),
        duration = ?started.elapsed(),
        "hub request"
    );
    Ok(response)
}
