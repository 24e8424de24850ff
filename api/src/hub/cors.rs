//! CORS for `negotiate`: a browser app on another origin preflights it (the client sends
//! `Authorization` and `X-Requested-With`), then POSTs with credentials. The allowed origin is
//! echoed, never `*`, which browsers refuse together with credentials. The WebSocket upgrade
//! needs no CORS.

use herald_shared::config::CorsOrigins;
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::web::Data;
use poem::{Endpoint, FromRequest, IntoResponse, Request, Response, Result};

use super::Hub;

const ALLOWED_HEADERS: &str = "authorization, x-requested-with, x-signalr-user-agent";
const ALLOWED_METHODS: &str = "POST";
/// Browsers cache a preflight for this long (seconds), sparing one round trip per reconnect.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Middleware around `negotiate`: answers preflights itself and decorates every other answer.
pub async fn cors<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let hub = <Data<&Hub>>::from_request_without_body(&req)
        .await?
        .0
        .clone();
    let origin = allowed_origin(&req, &hub.config().cors_origins);
    let mut response = if req.method() == Method::OPTIONS {
        preflight(origin.is_some())
    } else {
        match next.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        }
    };
    decorate(&mut response, origin);
    Ok(response)
}

/// The request's `Origin` when it is allowed.
fn allowed_origin(req: &Request, allowed: &CorsOrigins) -> Option<HeaderValue> {
    let origin = req.headers().get(header::ORIGIN)?;
    allowed
        .allows(origin.to_str().ok()?)
        .then(|| origin.clone())
}

fn preflight(allowed: bool) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if allowed {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
    }
    response
}

/// Adds the CORS headers when the origin is allowed (an answer without them is how browsers
/// learn it is not), and `Vary: Origin` always, so caches keep answers per origin.
fn decorate(response: &mut Response, origin: Option<HeaderValue>) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}
