//! Seed-002 clients call `/api/Notifications…` and `/api/Auth/token-exchange`, with the tenant
//! implied by their credential. This middleware authenticates such a request, rewrites it to
//! `/tenant/{tenantId}/v1/…` and hands the resolved caller on, so the very same handlers serve
//! both (and Swagger documents each operation once).

use poem::http::Uri;
use poem::{Endpoint, IntoResponse, Request, Response, Result};

use crate::caller::authenticate;

const IMPLIED_PREFIX: &str = "/api/";

pub async fn rewrite_implied_tenant<E: Endpoint>(next: E, mut req: Request) -> Result<Response> {
    if let Some(rest) = req.uri().path().strip_prefix(IMPLIED_PREFIX) {
        let caller = match authenticate(&req, true).await {
            Ok(caller) => caller,
            Err(error) => return Ok(error.into_response()),
        };
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let target = format!("/tenant/{}/v1/{rest}{query}", caller.tenant_id());
        match target.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return Ok(poem::http::StatusCode::NOT_FOUND.into_response()),
        }
        req.extensions_mut().insert(caller);
    }
    next.call(req).await.map(IntoResponse::into_response)
}
