//! The REST API's edges: authentication, errors, limits, the OpenAPI document, tenant isolation,
//! hostile input, users and the admin CLI.

mod auth;
mod auth_tokens;
mod errors;
mod fuzz;
mod http_limits;
mod openapi;
mod operations;
mod rename_conflicts;
mod secrets_in_logs;
mod tenant_isolation;
mod unstorable_input;
mod users;
