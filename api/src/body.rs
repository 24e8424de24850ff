//! Request bodies: the 1 MiB limit, and JSON parsing that names the offending field.
//!
//! poem-openapi's own `Json<T>` stops at the first error and reports it without the field's
//! name. [`JsonBody`] parses with serde and `serde_path_to_error` instead, so a client learns
//! exactly which field is wrong (`errors: {"priority": ["unknown variant `Huge`…"]}`), while the
//! schema shown in Swagger still comes from the type's `Object` derive.

use poem::{Endpoint, FromRequest, IntoResponse, Request, RequestBody, Response, Result};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use herald_shared::domain::FieldErrors;

use crate::error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Middleware: refuses bodies over [`MAX_BODY_BYTES`] with 413 whatever the framing. A declared
/// `Content-Length` over the limit is refused up front; every other body (HTTP/1.1 chunked,
/// HTTP/2 with or without a length, a length that lies) is counted as it is read, so memory stays
/// bounded by the limit however much the client sends.
pub async fn limit_body<E: Endpoint>(next: E, mut req: Request) -> Result<Response> {
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_DRAIN_BYTES as u64 => return Ok(too_large()),
        // Oversized but drainable: read it all so the client sees the answer, not a reset.
        Some(length) if length > MAX_BODY_BYTES as u64 => {
            let _ = read_limited(req.take_body()).await;
            return Ok(too_large());
        }
        _ => match read_limited(req.take_body()).await {
            Ok(Some(bytes)) => req.set_body(bytes),
            Ok(None) => return Ok(too_large()),
            Err(error) => return Ok(error.into_response()),
        },
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// 413, asking the client not to reuse the connection (its body may still be in flight).
fn too_large() -> Response {
    let mut response = ApiError::payload_too_large().into_response();
    response.headers_mut().insert(
        poem::http::header::CONNECTION,
        poem::http::HeaderValue::from_static("close"),
    );
    response
}

/// How much of an oversized chunked body is read and discarded before answering 413: a client
/// still writing when the server closes sees a reset instead of the answer. Past this, give up.
const MAX_DRAIN_BYTES: usize = 8 * MAX_BODY_BYTES;

/// The body if it fits the limit; `None` (after draining a bounded remainder) if it does not.
async fn read_limited(body: poem::Body) -> std::result::Result<Option<Vec<u8>>, ApiError> {
    use tokio::io::AsyncReadExt;
    let mut reader = body.into_async_read();
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    loop {
        let read = reader.read(&mut chunk).await.map_err(|error| {
            ApiError::bad_request(format!("The request body could not be read: {error}."))
        })?;
        if read == 0 {
            return Ok((total <= MAX_BODY_BYTES).then_some(buffer));
        }
        total += read;
        if total <= MAX_BODY_BYTES {
            buffer.extend_from_slice(&chunk[..read]);
        } else if total > MAX_DRAIN_BYTES {
            return Ok(None);
        } else {
            buffer = Vec::new();
        }
    }
}

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime)
            if mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let bytes = Vec::<u8>::from_request(request, body).await?;
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(|errors| ApiError::validation(errors).into())
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);

/// Parses `bytes` as `T`, reporting failures by JSON path (`body` for the document itself).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, FieldErrors> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FieldErrors::single(
            "body",
            "The request body is empty; a JSON object is required.",
        ));
    }
    // serde would accept a struct written as an array (`[1, 2]`); API bodies are objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(FieldErrors::single(
            "body",
            "The request body must be a JSON object.",
        ));
    }
    // A NUL can only arrive as the escape `\u0000` (raw control bytes are invalid JSON), so
    // the tree walk that names its field runs only when that escape appears at all.
    if contains_nul_escape(bytes)
        && let Ok(document) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(field) = first_nul_path(&document, "")
    {
        return Err(FieldErrors::single(field, NUL_MESSAGE));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return FieldErrors::single(
                "body",
                format!("The request body is not valid JSON: {inner}"),
            );
        }
        let message = strip_position(&inner.to_string());
        let field = match missing_field(&message) {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        FieldErrors::single(field, sentence(&message))
    })
}

/// Why a string holding U+0000 is refused: PostgreSQL `text` cannot store it.
pub const NUL_MESSAGE: &str = "Text must not contain the NUL character (U+0000).";

fn contains_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w == b"\\u0000")
}

/// The JSON path (`metadata.key`, `userIds[2]`) of the first string or key holding U+0000.
fn first_nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Some(if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| first_nul_path(item, &format!("{path}[{index}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                // The key itself cannot be named as sent; its parent can.
                Some(if path.is_empty() {
                    "body".to_owned()
                } else {
                    path.to_owned()
                })
            } else {
                first_nul_path(item, &join(key))
            }
        }),
        _ => None,
    }
}

/// serde names a missing field in the message, while the path points at its parent.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// serde_json appends " at line 1 column 42", which means nothing to an API user.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

fn sentence(message: &str) -> String {
    let mut text = message.to_owned();
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Sample {
        user_id: String,
        priority: Option<Level>,
        nested: Option<Inner>,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    enum Level {
        Low,
        High,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn errors(json: &str) -> Vec<(String, String)> {
        parse_json::<Sample>(json.as_bytes())
            .unwrap_err()
            .fields()
            .iter()
            .map(|(k, v)| (k.clone(), v.join(" ")))
            .collect()
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        assert_eq!(errors("{}")[0].0, "userId");
        assert!(errors("{}")[0].1.starts_with("Missing field `userId`"));
        let bad_enum = errors(r#"{"userId":"a","priority":"Huge"}"#);
        assert_eq!(bad_enum[0].0, "priority");
        assert!(bad_enum[0].1.contains("variant `Huge`"));
        assert_eq!(errors(r#"{"userId":5}"#)[0].0, "userId");
        assert_eq!(
            errors(r#"{"userId":"a","nested":{"count":"x"}}"#)[0].0,
            "nested.count"
        );
        assert_eq!(errors(r#"{"userId":"a","nested":{}}"#)[0].0, "nested.count");
    }

    #[test]
    fn nul_characters_are_refused_by_path() {
        assert_eq!(errors(r#"{"userId":"a\u0000b"}"#)[0].0, "userId");
        assert_eq!(
            errors(r#"{"userId":"a","nested":{"count":1,"x":["ok","\u0000"]}}"#)[0].0,
            "nested.x[1]"
        );
        assert_eq!(
            errors(r#"{"userId":"a","nested":{"k\u0000":1}}"#)[0].0,
            "nested"
        );
        assert_eq!(errors(r#"{"userId":"a\u0000"}"#)[0].1, NUL_MESSAGE);
        // An escaped backslash followed by "u0000" is not a NUL.
        assert!(parse_json::<Sample>(br#"{"userId":"\\u0000"}"#).is_ok());
    }

    #[test]
    fn nesting_past_the_recursion_limit_is_refused_not_overflowed() {
        for inner in ["1", "\"\\u0000\""] {
            let deep = format!(
                "{{\"userId\":\"a\",\"nested\":{}{inner}{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            );
            // serde_path_to_error may point into the first array before giving up.
            let field = &errors(&deep)[0].0;
            assert!(field.starts_with("nested"), "{inner}: {field}");
        }
    }

    #[test]
    fn broken_documents_are_reported_against_the_body() {
        for json in ["", "{", "[1,2]", "not json", "null"] {
            assert_eq!(errors(json)[0].0, "body", "{json:?}");
        }
    }
}
