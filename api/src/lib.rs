//! Herald's HTTP front: the REST API, its OpenAPI document and Swagger UI, health endpoints,
//! and the SignalR hub ([`hub`]).
//!
//! `main.rs` files stay thin: they read configuration and call [`Application::build`] (or
//! [`hub::node::HubNode::build`] for `herald-hub`).

pub mod admin;
pub mod auth;
pub mod blocking;
pub mod body;
pub mod broadcasts;
pub mod caller;
pub mod chat;
pub mod error;
pub mod events;
pub mod health;
pub mod http_server;
pub mod hub;
pub mod idempotency;
pub mod implied_tenant;
mod listener;
pub mod notifications;
mod openapi_nulls;
pub mod paging;
pub mod path_names;
pub mod providers;
pub mod recipients;
pub mod revoked_keys;
pub mod settings;
pub mod state;
pub mod tags;
pub mod targets;
pub mod topics;
pub mod unstorable_text;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_shared::auth::JwtKeys;
use herald_shared::config::{ApiConfig, HttpConfig};
use herald_shared::{db, redis_conn};
use poem::middleware::{CatchPanic, Tracing};
use poem::web::Redirect;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Route, get};
use poem_openapi::OpenApiService;

use crate::error::{Problem, problem_response, render_errors};
use crate::hub::Hub;
use crate::listener::NoDelayAcceptor;
use crate::state::AppState;

/// Every `#[OpenApi]` resource, combined into one document.
pub type Apis = (
    auth::AuthApi,
    notifications::NotificationsApi,
    notifications::admin::NotificationsAdminApi,
    notifications::deliveries::NotificationDeliveriesApi,
    recipients::RecipientsApi,
    targets::TargetsApi,
    providers::ProvidersApi,
    topics::TopicsApi,
    topics::subscribers::TopicSubscribersApi,
    broadcasts::BroadcastsApi,
    chat::ChatApi,
    chat::members::ChatMembersApi,
    chat::messages::ChatMessagesApi,
    chat::broadcast::ChatBroadcastApi,
    settings::SettingsApi,
);

/// The OpenAPI service: served at `/openapi.json`, printed by `herald-admin openapi`, and
/// committed as `openapi/openapi.json`.
pub fn openapi_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            notifications::NotificationsApi,
            notifications::admin::NotificationsAdminApi,
            notifications::deliveries::NotificationDeliveriesApi,
            recipients::RecipientsApi,
            targets::TargetsApi,
            providers::ProvidersApi,
            topics::TopicsApi,
            topics::subscribers::TopicSubscribersApi,
            broadcasts::BroadcastsApi,
            chat::ChatApi,
            chat::members::ChatMembersApi,
            chat::messages::ChatMessagesApi,
            chat::broadcast::ChatBroadcastApi,
            settings::SettingsApi,
        ),
        "Herald",
        env!("CARGO_PKG_VERSION"),
    )
    .description(include_str!("openapi_intro.md"))
    .license(poem_openapi::LicenseObject::new("Apache-2.0"))
}

/// The OpenAPI document as committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    openapi_nulls::mark_optional_properties_nullable(&openapi_service().spec())
}

/// `GET /openapi.json`: the same document as [`openapi_json`], computed once.
fn serve_openapi_json() -> impl poem::Endpoint {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    poem::endpoint::make_sync(|_| {
        poem::Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(SPEC.get_or_init(openapi_json).as_str())
    })
}

/// All routes with their middleware, ready to serve: the REST API and the hub on one base URL,
/// as the seed clients assume.
pub fn routes(state: AppState, hub: Hub) -> impl poem::Endpoint {
    let api = openapi_service();
    let swagger = api.swagger_ui();
    let rest = Route::new()
        .nest("/", api)
        .nest("/swagger", swagger)
        .at("/openapi.json", get(serve_openapi_json()))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at(
            "/",
            get(poem::endpoint::make_sync(|_| {
                Redirect::see_other("/swagger")
            })),
        )
        .around(render_errors)
        .around(unstorable_text::refuse_unstorable_text)
        .around(implied_tenant::rewrite_implied_tenant)
        .around(body::limit_body)
        .with(CatchPanic::new().with_handler(|_| {
            problem_response(Problem::new(
                poem::http::StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred. It has been logged.",
            ))
        }))
        .with(Tracing);
    // The hub's routes sit beside the REST tree, outside its `Tracing`: that middleware logs
    // whole URIs, and the hub's carry `access_token`.
    hub::mount(Route::new().nest("/", rest))
        .data(state)
        .data(hub)
        .into_endpoint()
}

/// What the API server and a hub node share: the stores connected, the port bound and the
/// hub started (every HTTP process serves the hub).
pub(crate) struct BoundServer {
    acceptor: NoDelayAcceptor,
    local_addr: SocketAddr,
    state: AppState,
    hub: Hub,
    timeouts: http_server::Timeouts,
}

impl BoundServer {
    /// Connects to the stores, checks the schema and binds the port; fails with a message that
    /// says what to fix.
    pub(crate) async fn build(config: ApiConfig) -> anyhow::Result<Self> {
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

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `app` (built from the state and hub) until SIGTERM or ctrl-c, then drains.
    pub(crate) async fn serve<E: Endpoint + 'static>(
        self,
        app: impl FnOnce(AppState, Hub) -> E,
    ) -> anyhow::Result<()> {
        let endpoint = app(self.state, self.hub.clone());
        serve(self.acceptor, endpoint, &self.hub, self.timeouts).await
    }
}

/// A bound, ready-to-run API server.
pub struct Application(BoundServer);

impl Application {
    /// Connects to the stores, checks the schema and binds the port; fails with a message that
    /// says what to fix.
    pub async fn build(config: ApiConfig) -> anyhow::Result<Self> {
        BoundServer::build(config).await.map(Self)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until SIGTERM or ctrl-c, then lets in-flight requests finish (bounded).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(
            "listening on http://{} (Swagger UI at /swagger)",
            self.local_addr()
        );
        self.0.serve(routes).await
    }
}

/// Connects to PostgreSQL (checking the schema) and Redis, and loads the JWT keys: what every
/// HTTP process needs.
pub(crate) async fn connect_state(config: ApiConfig) -> anyhow::Result<AppState> {
    let pool = db::connect(&config.database).await?;
    db::ensure_schema(&pool, config.database.auto_migrate).await?;
    let redis = redis_conn::connect(&config.redis).await?;
    let jwt = JwtKeys::new(&config.jwt).context("the JWT keys are unusable")?;
    let refresh = Duration::from_secs(config.jwt.revocation_refresh_secs);
    let revoked_keys = revoked_keys::RevokedKeys::load(&pool, refresh)
        .await
        .context("cannot read the revoked API keys")?;
    Ok(AppState {
        db: pool,
        queues: herald_shared::jobs::Queues::new(redis.clone(), &config.redis.prefix),
        redis,
        jwt: Arc::new(jwt),
        config: Arc::new(config),
        revoked_keys,
    })
}

/// The connection timeouts `HERALD_HTTP_*_TIMEOUT_SECS` and `HERALD_SHUTDOWN_TIMEOUT_SECS` set.
pub(crate) fn timeouts(config: &HttpConfig) -> http_server::Timeouts {
    http_server::Timeouts {
        header: Duration::from_secs(config.header_timeout_secs),
        idle: Duration::from_secs(config.idle_timeout_secs),
        shutdown: Duration::from_secs(config.shutdown_timeout_secs),
    }
}

/// Binds `HERALD_HOST:PORT`.
pub(crate) fn bind(config: &HttpConfig) -> anyhow::Result<(NoDelayAcceptor, SocketAddr)> {
    let addr = SocketAddr::new(config.host, config.port);
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} (PORT / HERALD_HOST)"))?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    Ok((NoDelayAcceptor::from_std(listener)?, local_addr))
}

/// Serves `app` until SIGTERM or ctrl-c. Then: stop accepting, tell every hub client to
/// reconnect elsewhere, let in-flight requests finish and the goodbyes go out (bounded).
pub(crate) async fn serve(
    acceptor: NoDelayAcceptor,
    app: impl Endpoint + 'static,
    hub: &Hub,
    timeouts: http_server::Timeouts,
) -> anyhow::Result<()> {
    let signalled = hub.clone();
    let signal = async move {
        herald_shared::shutdown::signal().await;
        signalled.shut_down();
    };
    http_server::serve(acceptor, app, timeouts, signal)
        .await
        .context("the HTTP server failed")?;
    let shutdown_timeout = timeouts.shutdown;
    if !hub.drained(shutdown_timeout).await {
        tracing::warn!(
            open = hub.connections(),
            "hub connections still open after the shutdown timeout"
        );
    }
    Ok(())
}
