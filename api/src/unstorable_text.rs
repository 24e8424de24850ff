//! Middleware: text PostgreSQL cannot store never reaches a handler.
//!
//! PostgreSQL `text` cannot hold U+0000, so a NUL anywhere in a path segment or a query value
//! is refused here, once for every route, with a 400 naming the parameter. Path segments are
//! ids and names, so other control characters are refused there too. JSON bodies get the same
//! rule in [`crate::body::parse_json`]; headers cannot carry a NUL at all (the HTTP parser
//! rejects control bytes in header values before any route runs).

use herald_shared::domain::FieldErrors;
use poem::{Endpoint, IntoResponse, Request, Response, Result};

use crate::body::NUL_MESSAGE;
use crate::error::ApiError;

pub async fn refuse_unstorable_text<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    if let Some(errors) =
        path_problems(req.uri().path()).or_else(|| query_problems(req.uri().query()))
    {
        return Ok(ApiError::validation(errors).into_response());
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// A URI carries a NUL or control character only percent-encoded (`%00`…`%1F`, `%7F`).
fn encoded_control(text: &str) -> Option<u8> {
    text.as_bytes().windows(3).find_map(|w| {
        let hex = std::str::from_utf8(&w[1..]).ok()?;
        let byte = u8::from_str_radix(hex, 16).ok()?;
        (w[0] == b'%' && (byte < 0x20 || byte == 0x7f)).then_some(byte)
    })
}

fn path_problems(path: &str) -> Option<FieldErrors> {
    let segments = path.trim_matches('/').split('/');
    segments.enumerate().find_map(|(index, segment)| {
        let byte = encoded_control(segment)?;
        let field = crate::path_names::name_of_segment(path, index).unwrap_or("path".to_owned());
        let message = if byte == 0 {
            NUL_MESSAGE
        } else {
            "Ids and names must not contain control characters."
        };
        Some(FieldErrors::single(field, message))
    })
}

fn query_problems(query: Option<&str>) -> Option<FieldErrors> {
    query?.split('&').find_map(|pair| {
        if !pair.contains("%00") {
            return None;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let field = if value.contains("%00") && !name.contains('%') {
            name
        } else {
            "query"
        };
        Some(FieldErrors::single(field, NUL_MESSAGE))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(errors: Option<FieldErrors>) -> Option<String> {
        errors.map(|e| e.fields().keys().next().cloned().unwrap_or_default())
    }

    #[test]
    fn nul_in_a_query_value_names_the_parameter() {
        assert_eq!(
            field(query_problems(Some("a=1&userId=x%00y"))).as_deref(),
            Some("userId")
        );
        assert_eq!(
            field(query_problems(Some("k%00=1"))).as_deref(),
            Some("query")
        );
        assert_eq!(field(query_problems(Some("userId=x%01y&a=%2500"))), None);
        assert_eq!(field(query_problems(None)), None);
    }

    #[test]
    fn control_characters_in_path_segments_are_refused() {
        let path = "/tenant/x%00y/v1/Auth/token-exchange";
        assert_eq!(field(path_problems(path)).as_deref(), Some("tenantId"));
        assert_eq!(field(path_problems("/a/b%1fc")).as_deref(), Some("path"));
        assert_eq!(field(path_problems("/a/b%20c/%7e")), None);
    }
}
