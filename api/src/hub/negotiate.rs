//! The two HTTP requests that open a connection: `POST …/hub/negotiate` (authenticates and
//! hands out a connection token) and `GET …/hub?id=<token>` (the WebSocket upgrade). A client
//! that skips negotiation upgrades without `id` and authenticates the upgrade itself.

use herald_shared::events::user_channel;
use poem::http::StatusCode;
use poem::web::websocket::{WebSocket, WebSocketConfig};
use poem::web::{Data, Json, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde::Serialize;

use super::connection::{self, Params};
use super::credentials::{self, HubQuery, HubUser};
use super::{Hub, protocol, tokens};
use crate::error::{ApiError, Problem, problem_response};
use crate::state::AppState;

/// Bytes read from the socket at a time. Clients send pings and little else, and tungstenite
/// zero-fills the whole read buffer: its 128 KiB default would cost that much per connection.
const READ_BUFFER_BYTES: usize = 256;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NegotiateResponse {
    negotiate_version: u8,
    connection_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_token: Option<String>,
    available_transports: [Transport; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Transport {
    transport: &'static str,
    transfer_formats: [&'static str; 2],
}

/// `POST /tenant/{tenantId}/v1/hub/negotiate`: always 200 on success (the client rejects
/// any other 2xx), and never `useStatefulReconnect`, which Herald does not implement.
#[handler]
pub async fn negotiate(
    req: &Request,
    Path(tenant): Path<String>,
    state: Data<&AppState>,
    hub: Data<&Hub>,
) -> Response {
    let answer = async {
        let tenant_id = credentials::tenant_id(&tenant)?;
        let query = HubQuery::parse(req)?;
        query.client_id()?;
        query.last_event_at()?;
        let version = negotiate_version(&query)?;
        let user = credentials::require_user(req, &state, &query, tenant_id)?;
        if at_connection_limit(&hub, &user) {
            return Ok(None);
        }
        let token = hub.tokens().issue(&user);
        // Version 0 clients use the connection id as the token; version 1 keeps the token
        // secret and the id public.
        let (connection_id, connection_token) = match version {
            0 => (token, None),
            _ => (tokens::random_id(), Some(token)),
        };
        Ok::<_, ApiError>(Some(NegotiateResponse {
            negotiate_version: version,
            connection_id,
            connection_token,
            available_transports: [Transport {
                transport: "WebSockets",
                transfer_formats: ["Text", "Binary"],
            }],
        }))
    };
    match answer.await {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => problem_response(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            connection::TOO_MANY_CONNECTIONS,
        )),
        Err(error) => error.into_response(),
    }
}

/// Whether the user already holds as many connections on this node as one user may. Checked
/// again (atomically) when the connection joins; this answers early and clearly.
fn at_connection_limit(hub: &Hub, user: &HubUser) -> bool {
    let channel = user_channel(hub.redis_prefix(), user.tenant_id, user.user_id.as_str());
    hub.registry().connections_of(&channel) >= hub.config().max_connections_per_user
}

/// The version this server speaks with the client: 0 when the client names none, else 1.
fn negotiate_version(query: &HubQuery) -> Result<u8, ApiError> {
    match query.negotiate_version.as_deref() {
        None => Ok(0),
        Some(text) => match text.parse::<u32>() {
            Ok(0) => Ok(0),
            Ok(_) => Ok(1),
            Err(_) => Err(ApiError::field(
                "negotiateVersion",
                "Expected a non-negative integer.",
            )),
        },
    }
}

/// `GET /tenant/{tenantId}/v1/hub`: the WebSocket upgrade.
#[handler]
pub async fn connect(
    req: &Request,
    websocket: Option<WebSocket>,
    Path(tenant): Path<String>,
    state: Data<&AppState>,
    hub: Data<&Hub>,
) -> Response {
    let Some(websocket) = websocket else {
        return problem_response(Problem::new(
            StatusCode::BAD_REQUEST,
            "The hub accepts WebSocket connections only (SignalR WebSockets transport).",
        ));
    };
    let accepted = async {
        let refused = IntoResponse::into_response;
        let tenant_id = credentials::tenant_id(&tenant).map_err(refused)?;
        let query = HubQuery::parse(req).map_err(refused)?;
        let client_id = query.client_id().map_err(refused)?;
        let last_event_at = query.last_event_at().map_err(refused)?;
        let user = connecting_user(req, &state, &hub, &query, tenant_id).await?;
        Ok::<_, Response>(Params {
            hub: hub.clone(),
            user,
            client_id,
            last_event_at,
            db: state.db.clone(),
            // Counted from here, so a shutdown that starts while the upgrade completes still
            // waits for this connection's goodbye.
            counted: hub.count_connection(),
        })
    };
    let params = match accepted.await {
        Ok(params) => params,
        Err(refusal) => return refusal,
    };
    websocket
        .config(websocket_config())
        .on_upgrade(move |socket| {
            // A task of its own: poem's upgrade task is several KiB larger than the connection
            // needs, and an idle node holds one task per connection for hours.
            tokio::spawn(connection::serve(socket, params));
            std::future::ready(())
        })
        .into_response()
}

/// With a connection token: the user negotiate authenticated, on whichever node (404 when the
/// token is unknown, used or expired; 403 if the upgrade also presents a different user's
/// token; 503 when Redis cannot record its use). Without one (skipNegotiation): the upgrade's
/// own credential.
async fn connecting_user(
    req: &Request,
    state: &AppState,
    hub: &Hub,
    query: &HubQuery,
    tenant_id: uuid::Uuid,
) -> Result<HubUser, Response> {
    let Some(token) = &query.id else {
        return credentials::require_user(req, state, query, tenant_id)
            .map_err(IntoResponse::into_response);
    };
    let unknown = || {
        ApiError::not_found(
            "Unknown, used or expired connection id: negotiate again (ids are single-use \
             and valid for 30 seconds).",
        )
    };
    let mut redis = state.redis.clone();
    let user = match hub
        .tokens()
        .redeem(&mut redis, hub.redis_prefix(), token)
        .await
    {
        Ok(user) if user.tenant_id == tenant_id => user,
        Ok(_) | Err(tokens::Rejected::Invalid) => return Err(unknown().into_response()),
        Err(tokens::Rejected::Unavailable) => {
            return Err(problem_response(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The hub cannot check the connection id right now; negotiate again shortly.",
            )));
        }
    };
    match credentials::authenticate(req, state, query, tenant_id) {
        Err(error) => Err(error.into_response()),
        Ok(Some(presented)) if !presented.is_same_user(&user) => Err(ApiError::forbidden(
            "The connection id was negotiated for another user.",
        )
        .into_response()),
        // The token presented last is the one the connection lives by.
        Ok(Some(presented)) => Ok(presented),
        Ok(None) => Ok(user),
    }
}

fn websocket_config() -> WebSocketConfig {
    let max_message = protocol::MAX_RECORD_BYTES * 2;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        // Frames go out as soon as they are complete; the connection batches events itself.
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}
