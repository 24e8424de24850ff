//! `/healthz` (the process is up) and `/readyz` (and can reach PostgreSQL and Redis).

use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler, http::StatusCode};
use serde_json::json;

use crate::state::AppState;

#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when both stores answer, 503 naming the one that does not (load balancers take the
/// node out of rotation; the body tells the operator why).
#[handler]
pub async fn readyz(state: Data<&AppState>) -> Response {
    let readiness = herald_shared::health::check(&state.db, &state.redis).await;
    let describe = |result: &Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.clone(),
    };
    let body = json!({
        "status": if readiness.is_ready() { "ready" } else { "unavailable" },
        "postgres": describe(&readiness.postgres),
        "redis": describe(&readiness.redis),
    });
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}
