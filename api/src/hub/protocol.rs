//! The SignalR JSON hub protocol: records, the handshake and the few messages Herald speaks
//! (the README's "Real-time hub" section). Every record is JSON followed by the record
//! separator `0x1E`, and one WebSocket frame may carry several.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

/// Ends every record.
pub const RECORD_SEPARATOR: char = '\u{1e}';

/// The handshake response that accepts the connection.
pub const HANDSHAKE_OK: &str = "{}\u{1e}";

/// Keep-alive, sent when the server has sent nothing for a while.
pub const PING: &str = "{\"type\":6}\u{1e}";

/// What a server→client event record looks like around its payload.
const EVENT_PREFIX: &str = "{\"type\":1,\"target\":\"MessagingEvent\",\"arguments\":[";
const EVENT_SUFFIX: &str = "]}\u{1e}";

/// Protocol versions of the JSON protocol the clients in use send (1 today; 0 and 2 accepted).
const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 0..=2;

/// The `MessagingEvent` invocation carrying `payload` (the JSON published on Redis, forwarded
/// verbatim), built once per event and shared by every connection of the user. `None` when the
/// payload is not JSON: forwarding it would break every client's parser.
///
/// No `invocationId`: with one the client would answer "Client didn't provide a result".
pub fn event_record(payload: &[u8]) -> Option<Arc<str>> {
    let payload = std::str::from_utf8(payload).ok()?;
    // Valid JSON also proves the payload holds no raw record separator (a control character
    // is neither JSON whitespace nor allowed unescaped in strings).
    serde_json::from_str::<serde::de::IgnoredAny>(payload).ok()?;
    let mut record = String::with_capacity(EVENT_PREFIX.len() + payload.len() + EVENT_SUFFIX.len());
    record.push_str(EVENT_PREFIX);
    record.push_str(payload);
    record.push_str(EVENT_SUFFIX);
    Some(record.into())
}

/// The payload inside a record built by [`event_record`].
pub fn event_payload(record: &str) -> &str {
    record
        .strip_prefix(EVENT_PREFIX)
        .and_then(|rest| rest.strip_suffix(EVENT_SUFFIX))
        .unwrap_or_default()
}

/// The handshake response refusing the connection; the client's `start()` rejects with it.
pub fn handshake_error(message: &str) -> String {
    record(&json!({ "error": message }))
}

/// A Close message. With `allow_reconnect` the client's automatic reconnect takes over; without
/// it the client stops for good.
pub fn close(error: Option<&str>, allow_reconnect: bool) -> String {
    let mut message = json!({ "type": 7 });
    if let Some(error) = error {
        message["error"] = json!(error);
    }
    if allow_reconnect {
        message["allowReconnect"] = json!(true);
    }
    record(&message)
}

/// The Completion answering a client invocation that failed.
pub fn completion_error(invocation_id: &str, error: &str) -> String {
    record(&json!({ "type": 3, "invocationId": invocation_id, "error": error }))
}

fn record(message: &serde_json::Value) -> String {
    let mut text = message.to_string();
    text.push(RECORD_SEPARATOR);
    text
}

/// Checks the client's handshake request; `Err` holds the text for [`handshake_error`].
pub fn check_handshake(record: &str) -> Result<(), String> {
    #[derive(Deserialize)]
    struct HandshakeRequest {
        protocol: String,
        version: u32,
    }
    let request: HandshakeRequest = serde_json::from_str(record).map_err(|_| {
        "The handshake request is not valid: expected {\"protocol\":\"json\",\"version\":1}."
            .to_owned()
    })?;
    if request.protocol != "json" {
        return Err(format!(
            "Requested protocol '{}' is not available.",
            request.protocol
        ));
    }
    if !SUPPORTED_VERSIONS.contains(&request.version) {
        return Err(format!(
            "The server does not support version {} of the 'json' protocol.",
            request.version
        ));
    }
    Ok(())
}

/// What a client may send once connected.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// A hub method call. Herald's hub has no methods; with an id the client awaits an answer.
    Invocation {
        invocation_id: Option<String>,
        target: String,
    },
    Ping,
    /// The client is leaving.
    Close,
    /// Anything else (stream items, acks, cancels, types of later protocol versions): ignored,
    /// as the protocol asks.
    Ignored,
}

/// Parses one record; `Err` when it is not a JSON object with a numeric `type`.
pub fn parse_message(record: &str) -> Result<ClientMessage, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Message {
        #[serde(rename = "type")]
        kind: u8,
        invocation_id: Option<String>,
        target: Option<String>,
    }
    let message: Message = serde_json::from_str(record)?;
    Ok(match message.kind {
        // 4 is StreamInvocation: also a call awaiting an answer.
        1 | 4 => ClientMessage::Invocation {
            invocation_id: message.invocation_id,
            target: message.target.unwrap_or_default(),
        },
        6 => ClientMessage::Ping,
        7 => ClientMessage::Close,
        _ => ClientMessage::Ignored,
    })
}

/// Reassembles records that may be split across frames or share one.
#[derive(Default)]
pub struct RecordReader {
    partial: String,
}

/// A record grew past the limit without its separator: a broken or hostile client.
#[derive(Debug, PartialEq, Eq)]
pub struct RecordTooLarge;

/// Largest record a client may send. Clients send pings and the odd invocation; this bounds
/// what a misbehaving one can make the node hold.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

impl RecordReader {
    /// Adds a frame's text and returns the records it completes, in order.
    pub fn push(&mut self, text: &str) -> Result<Vec<String>, RecordTooLarge> {
        let mut records = Vec::new();
        let mut rest = text;
        while let Some(end) = rest.find(RECORD_SEPARATOR) {
            let (head, tail) = rest.split_at(end);
            let record = if self.partial.is_empty() {
                head.to_owned()
            } else {
                let mut record = std::mem::take(&mut self.partial);
                record.push_str(head);
                record
            };
            if record.len() > MAX_RECORD_BYTES {
                return Err(RecordTooLarge);
            }
            records.push(record);
            rest = &tail[RECORD_SEPARATOR.len_utf8()..];
        }
        if self.partial.len() + rest.len() > MAX_RECORD_BYTES {
            return Err(RecordTooLarge);
        }
        self.partial.push_str(rest);
        if self.partial.is_empty() {
            // A connection lives for hours: give back what a large record made it allocate.
            self.partial = String::new();
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_record_wraps_the_payload_verbatim_without_an_invocation_id() {
        let payload = br#"{"type":"Message","id":"n1","parentId":null,"createdAt":"2026-01-15T10:30:00.000Z"}"#;
        let record = event_record(payload).unwrap();
        assert_eq!(
            &*record,
            "{\"type\":1,\"target\":\"MessagingEvent\",\"arguments\":[{\"type\":\"Message\",\"id\":\"n1\",\"parentId\":null,\"createdAt\":\"2026-01-15T10:30:00.000Z\"}]}\u{1e}"
        );
        assert_eq!(event_payload(&record).as_bytes(), payload);
        let parsed: serde_json::Value =
            serde_json::from_str(record.trim_end_matches(RECORD_SEPARATOR)).unwrap();
        assert!(parsed.get("invocationId").is_none());
    }

    #[test]
    fn a_payload_that_is_not_json_is_never_forwarded() {
        assert!(event_record(b"{\"type\":").is_none());
        assert!(event_record(b"{}\x1e{}").is_none());
        assert!(event_record(&[0xff, 0xfe]).is_none());
    }

    #[test]
    fn the_handshake_accepts_json_versions_0_to_2_only() {
        for version in 0..=2 {
            let request = format!(r#"{{"protocol":"json","version":{version}}}"#);
            assert_eq!(check_handshake(&request), Ok(()));
        }
        assert_eq!(
            check_handshake(r#"{"protocol":"messagepack","version":1}"#),
            Err("Requested protocol 'messagepack' is not available.".to_owned())
        );
        assert!(
            check_handshake(r#"{"protocol":"json","version":3}"#)
                .unwrap_err()
                .contains("version 3")
        );
        assert!(check_handshake("hello").is_err());
        assert_eq!(
            handshake_error("Requested protocol 'x' is not available."),
            "{\"error\":\"Requested protocol 'x' is not available.\"}\u{1e}"
        );
    }

    #[test]
    fn client_messages_are_told_apart_by_type() {
        assert_eq!(parse_message(r#"{"type":6}"#).unwrap(), ClientMessage::Ping);
        assert_eq!(
            parse_message(r#"{"type":7}"#).unwrap(),
            ClientMessage::Close
        );
        assert_eq!(
            parse_message(r#"{"type":1,"invocationId":"4","target":"Echo","arguments":[]}"#)
                .unwrap(),
            ClientMessage::Invocation {
                invocation_id: Some("4".to_owned()),
                target: "Echo".to_owned()
            }
        );
        assert_eq!(
            parse_message(r#"{"type":1,"target":"Fire","arguments":[]}"#).unwrap(),
            ClientMessage::Invocation {
                invocation_id: None,
                target: "Fire".to_owned()
            }
        );
        assert_eq!(
            parse_message(r#"{"type":9,"sequenceId":3}"#).unwrap(),
            ClientMessage::Ignored
        );
        assert!(parse_message("not json").is_err());
        assert!(parse_message(r#"{"target":"x"}"#).is_err());
    }

    #[test]
    fn server_messages_have_the_protocol_shape() {
        assert_eq!(
            close(None, true),
            "{\"allowReconnect\":true,\"type\":7}\u{1e}"
        );
        assert_eq!(
            close(Some("bye"), false),
            "{\"error\":\"bye\",\"type\":7}\u{1e}"
        );
        assert_eq!(
            completion_error("1", "nope"),
            "{\"error\":\"nope\",\"invocationId\":\"1\",\"type\":3}\u{1e}"
        );
    }

    #[test]
    fn records_are_split_within_frames_and_joined_across_them() {
        let mut reader = RecordReader::default();
        assert_eq!(
            reader.push("{\"type\":6}\u{1e}{\"type\":1,").unwrap(),
            vec!["{\"type\":6}".to_owned()]
        );
        assert_eq!(
            reader
                .push("\"target\":\"x\"}\u{1e}{\"type\":7}\u{1e}")
                .unwrap(),
            vec![
                "{\"type\":1,\"target\":\"x\"}".to_owned(),
                "{\"type\":7}".to_owned()
            ]
        );
        assert!(reader.push("").unwrap().is_empty());
    }

    #[test]
    fn a_record_without_end_cannot_grow_past_the_limit() {
        let mut reader = RecordReader::default();
        let chunk = "x".repeat(MAX_RECORD_BYTES / 2);
        assert!(reader.push(&chunk).is_ok());
        assert_eq!(reader.push(&chunk).map(|_| ()), Ok(()));
        assert_eq!(reader.push("x"), Err(RecordTooLarge));
    }
}
