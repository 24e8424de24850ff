//! The one error model of the API: RFC 9457 problem details (`application/problem+json`).
//!
//! Handlers return [`ApiError`] for expected outcomes. Everything poem or poem-openapi rejects
//! before a handler runs (bad parameters, unknown routes, wrong content type, panics) is turned
//! into the same shape by [`problem_from_poem_error`], so clients parse one format for every
//! failure.

use std::collections::BTreeMap;

use herald_shared::db::commit_window::late_commit;
use herald_shared::domain::FieldErrors;
use herald_shared::telemetry::error_chain;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The body of every error response.
#[derive(Object, Debug, Clone)]
pub struct Problem {
    /// A URI identifying the kind of problem.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, in words.
    pub detail: String,
    /// The same text as `detail`, for clients that read `message`.
    pub message: String,
    /// Validation errors by field name (request body fields use their JSON names, query
    /// parameters their parameter names).
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self {
            kind: type_uri(status).to_owned(),
            title: title(status).to_owned(),
            status: status.as_u16(),
            message: detail.clone(),
            detail,
            errors: None,
        }
    }

    pub fn validation(errors: &FieldErrors) -> Self {
        Self {
            errors: Some(errors.fields().clone()),
            ..Self::new(StatusCode::BAD_REQUEST, errors.summary())
        }
    }
}

/// The error responses an operation may give.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed or invalid; `errors` names each bad field.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Box<Problem>>),
    /// The credential is missing, malformed, expired or revoked.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(
        Json<Box<Problem>>,
        /// The authentication challenge (RFC 6750).
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// The credential is valid but may not do this (another tenant, another user's data).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Box<Problem>>),
    /// No such resource in this tenant.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Box<Problem>>),
    /// The request conflicts with the current state of the resource.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Box<Problem>>),
    /// The request body is larger than 1 MiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Box<Problem>>),
    /// The request is well-formed but cannot be processed (e.g. an idempotency key reused
    /// with a different body).
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Box<Problem>>),
    /// An unexpected error; details are in the server log, never in the response.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Box<Problem>>),
    /// Nothing was stored because the database was too slow this time; send the request again.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(
        Json<Box<Problem>>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        String,
    ),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The challenge sent with every 401.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"herald\"";

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(body(StatusCode::BAD_REQUEST, detail))
    }

    pub fn validation(errors: FieldErrors) -> Self {
        Self::BadRequest(Json(Box::new(Problem::validation(&errors))))
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(FieldErrors::single(field, message))
    }

    pub fn unauthorized(detail: impl Into<String>, challenge: impl Into<String>) -> Self {
        Self::Unauthorized(body(StatusCode::UNAUTHORIZED, detail), challenge.into())
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(body(StatusCode::FORBIDDEN, detail))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(body(StatusCode::NOT_FOUND, detail))
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(body(StatusCode::CONFLICT, detail))
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::Unprocessable(body(StatusCode::UNPROCESSABLE_ENTITY, detail))
    }

    pub fn payload_too_large() -> Self {
        Self::PayloadTooLarge(body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body exceeds the 1 MiB limit.",
        ))
    }

    /// An unexpected failure: the cause chain goes to the log, a detail-free body to the client.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(error), "request failed");
        Self::Internal(Json(Box::new(internal_problem())))
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        Self::validation(errors)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if let Some(late) = late_commit(&error) {
            tracing::warn!(error = %late, "a write was rolled back for taking too long");
            return Self::Unavailable(
                body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database was too slow to record this in time, so nothing was stored; send the request again.",
                ),
                "1".to_owned(),
            );
        }
        match refused_data(&error) {
            Some(reason) => {
                tracing::info!(error = %error_chain(&error), "the database refused a value");
                Self::field("body", reason)
            }
            None => Self::internal(&error),
        }
    }
}

/// What the client sent wrong when PostgreSQL refused a *value* (SQLSTATE class 22, data
/// exceptions: invalid text, numbers out of range, strings too long, a `jsonb` it cannot
/// hold; 54000: a value too large for an index). A field the edge validation missed is then
/// a client error, not a 500. Constraint (class 23) and connection failures are not data
/// errors and keep their own handling.
fn refused_data(error: &sqlx::Error) -> Option<&'static str> {
    let code = error.as_database_error()?.code()?;
    if code.starts_with("22") {
        Some(
            "A value in this request cannot be stored (invalid text, a number out of range or a value too long).",
        )
    } else if code == "54000" {
        Some("A value in this request is too large to be stored.")
    } else {
        None
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        if let Some(reason) = error.downcast_ref::<sqlx::Error>().and_then(refused_data) {
            tracing::info!(error = %error_chain(error.as_ref()), "the database refused a value");
            return Self::field("body", reason);
        }
        Self::internal(error.as_ref())
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(error: redis::RedisError) -> Self {
        Self::internal(&error)
    }
}

/// Boxed so `Result<_, ApiError>` stays small on the happy path.
fn body(status: StatusCode, detail: impl Into<String>) -> Json<Box<Problem>> {
    Json(Box::new(Problem::new(status, detail)))
}

fn internal_problem() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An unexpected error occurred. It has been logged.",
    )
}

/// Middleware: renders every error that escaped a handler as problem+json.
pub async fn render_errors<E: poem::Endpoint>(
    next: E,
    req: poem::Request,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    Ok(match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) => problem_from_poem_error(error, &path),
    })
}

/// Renders an error as problem+json; `path` (the request's) names failing path parameters.
pub fn problem_from_poem_error(error: poem::Error, path: &str) -> Response {
    if error.is_from_response() {
        // Built from an `ApiError`: already a problem body.
        return error.into_response();
    }
    let status = error.status();
    let problem = if let Some(e) = error.downcast_ref::<poem_openapi::error::ParseParamError>() {
        field_problem(e.name, &e.reason)
    } else if let Some(e) = error.downcast_ref::<poem_openapi::error::ParsePathError>() {
        let name = crate::path_names::resolve(e.name, path).unwrap_or_else(|| e.name.to_owned());
        field_problem(&name, &e.reason)
    } else if let Some(e) = error.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
        field_problem("body", &e.reason)
    } else if status.is_server_error() {
        tracing::error!(status = status.as_u16(), error = %error_chain(&error), "request failed");
        internal_problem()
    } else {
        Problem::new(status, describe(status, &error))
    };
    problem_response(problem)
}

/// A problem+json response outside the `ApiError` enum (middleware, plain handlers).
pub fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&problem)).unwrap_or_default();
    let mut response = Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(body);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "WWW-Authenticate",
            BEARER_CHALLENGE.parse().expect("static header"),
        );
    }
    response
}

fn field_problem(field: &str, reason: &str) -> Problem {
    Problem::validation(&FieldErrors::single(field, humanize(reason)))
}

const A_UUID: &str = "a UUID such as 0195f3c2-7b1e-7cc1-9d2a-4c1f9e1b2a3d";

/// What a client should send where a UUID is expected.
pub fn expected_uuid() -> String {
    format!("Expected {A_UUID}.")
}

/// poem-openapi explains parse failures in terms of its internal type names
/// (`failed to parse "string_uuid": …`); say what the client should send instead.
fn humanize(reason: &str) -> String {
    let expected = [
        ("\"string_uuid\"", A_UUID),
        (
            "\"string_date-time\"",
            "an ISO 8601 date-time such as 2026-01-15T10:30:00Z",
        ),
        ("\"integer_", "an integer"),
        ("\"boolean\"", "true or false"),
    ];
    match expected.iter().find(|(marker, _)| reason.contains(marker)) {
        Some((_, what)) => format!("Expected {what}."),
        None => reason.to_owned(),
    }
}

/// Text for errors poem raises itself; its own messages are fine for 4xx except the
/// route-level ones, which deserve a sentence an API user can act on.
fn describe(status: StatusCode, error: &poem::Error) -> String {
    match status {
        StatusCode::NOT_FOUND => "No resource exists at this path.".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "This path does not support this HTTP method.".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "The request body exceeds the 1 MiB limit.".to_owned(),
        _ => error.to_string(),
    }
}

fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Validation Error",
        other => other.canonical_reason().unwrap_or("Error"),
    }
}

/// RFC 9110 section describing each status, the conventional `type` for generic problems.
fn type_uri(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1",
        401 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2",
        403 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.4",
        404 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.5",
        405 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.6",
        409 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.10",
        413 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14",
        415 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.16",
        422 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.21",
        503 => "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4",
        _ if status.is_server_error() => "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.1",
        _ => "about:blank",
    }
}
