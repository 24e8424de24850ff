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
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = readiness.report();
    Json(body).with_status(status).into_response()
}
