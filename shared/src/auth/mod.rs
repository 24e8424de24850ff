//! Credentials: tenant API keys and end-user JWTs.

pub mod api_key;
pub mod jwt;

pub use jwt::{JwtKeys, TokenError, TokenSubject};
