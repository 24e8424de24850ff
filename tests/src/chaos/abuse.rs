//! Hostile clients: hub connections that never read, send garbage, send oversized frames or
//! never handshake; slowloris HTTP connections; oversized bodies over h2c (HTTP/2 without TLS).
//! Each returns what it observed, for the fault log and the checks.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

use crate::raw_hub::RS;

/// The four kinds of hostile hub client, in equal numbers.
#[derive(Clone, Copy, Debug)]
enum Hostility {
    NeverReads,
    Garbage,
    Oversized,
    NoHandshake,
}

/// Opens `count` hostile hub connections to `hub_port` (tokens from `tokens`, round robin),
/// keeps them for `hold`, then drops them. Returns a one-line summary.
pub async fn hostile_hub_clients(
    hub_port: u16,
    tenant_id: Uuid,
    tokens: Vec<String>,
    count: usize,
    hold: Duration,
) -> String {
    let kinds = [
        Hostility::NeverReads,
        Hostility::Garbage,
        Hostility::Oversized,
        Hostility::NoHandshake,
    ];
    let mut tasks = Vec::new();
    for i in 0..count {
        let token = tokens[i % tokens.len()].clone();
        let kind = kinds[i % kinds.len()];
        tasks.push(tokio::spawn(async move {
            let url = format!("ws://127.0.0.1:{hub_port}/tenant/{tenant_id}/v1/hub?clientId=x{i}");
            hostile(kind, &url, &token, hold).await
        }));
    }
    let mut upgraded = 0;
    for task in tasks {
        if task.await.unwrap_or(false) {
            upgraded += 1;
        }
    }
    format!("{count} hostile hub clients (4 kinds), {upgraded} upgraded, held {hold:?}")
}

/// Returns whether the WebSocket upgrade succeeded.
async fn hostile(kind: Hostility, url: &str, token: &str, hold: Duration) -> bool {
    let Ok(address) = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .parse::<std::net::SocketAddr>()
    else {
        return false;
    };
    let Ok(socket) = TcpSocket::new_v4() else {
        return false;
    };
    if matches!(kind, Hostility::NeverReads) {
        let _ = socket.set_recv_buffer_size(4096);
    }
    let Ok(stream) = socket.connect(address).await else {
        return false;
    };
    let Ok(mut request) = url.into_client_request() else {
        return false;
    };
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        request.headers_mut().insert("authorization", value);
    }
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(request, stream).await else {
        return false;
    };
    let handshake = format!("{{\"protocol\":\"json\",\"version\":1}}{RS}");
    let deadline = Instant::now() + hold;
    match kind {
        Hostility::NeverReads => {
            let _ = ws.send(Message::text(handshake)).await;
            tokio::time::sleep_until(deadline.into()).await;
        }
        Hostility::NoHandshake => tokio::time::sleep_until(deadline.into()).await,
        Hostility::Garbage => {
            let _ = ws.send(Message::text(handshake)).await;
            let mut n = 0u32;
            while Instant::now() < deadline {
                n += 1;
                let garbage = match n % 3 {
                    0 => Message::binary(vec![0xff, 0x00, 0x1e, 0x7b]),
                    1 => Message::text(format!("{{\"type\":{n},\"target\":[{RS}")),
                    _ => Message::text(format!("\u{0}\u{1e}not json {n}\u{1e}")),
                };
                if ws.send(garbage).await.is_err() {
                    break;
                }
                // Drain what the server says so this client is only hostile in what it sends.
                let _ = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
            }
        }
        Hostility::Oversized => {
            let _ = ws.send(Message::text(handshake)).await;
            let big = format!("{{\"type\":1,\"target\":\"{}\"}}{RS}", "x".repeat(4 << 20));
            while Instant::now() < deadline {
                if ws.send(Message::text(big.clone())).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    true
}

/// Opens `count` slowloris connections to `port`: each sends a request's headers one byte
/// every two seconds and never finishes them. Returns how many the server had closed by
/// `hold` (a server with a header timeout closes them all).
pub async fn slowloris(port: u16, path: String, count: usize, hold: Duration) -> (usize, usize) {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
                return None;
            };
            let head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return Some(true);
            }
            let deadline = Instant::now() + hold;
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if stream.write_all(b"a").await.is_err() {
                    return Some(true);
                }
            }
            // A last probe: a closed connection fails the write (or reads EOF).
            let closed = stream.write_all(b"a").await.is_err() || {
                let mut probe = [0u8; 1];
                matches!(
                    tokio::time::timeout(Duration::from_millis(200), stream.peek(&mut probe)).await,
                    Ok(Ok(0))
                )
            };
            Some(closed)
        }));
    }
    let mut opened = 0;
    let mut closed = 0;
    for task in tasks {
        if let Ok(Some(was_closed)) = task.await {
            opened += 1;
            if was_closed {
                closed += 1;
            }
        }
    }
    (opened, closed)
}

/// Sends `count` requests with a `size`-byte body over h2c to `url`. Returns, per request, the
/// status (`None` when the connection failed).
pub async fn h2c_oversized(
    url: String,
    api_key: String,
    count: usize,
    size: usize,
) -> Vec<Option<u16>> {
    let Ok(client) = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
    else {
        return vec![None; count];
    };
    let mut statuses = Vec::new();
    for _ in 0..count {
        let chunk = bytes_of(64 * 1024);
        let chunks = size / chunk.len();
        let stream =
            futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        let response = client
            .post(&url)
            .header("X-API-Key", &api_key)
            .header("Content-Type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await;
        statuses.push(response.ok().map(|r| r.status().as_u16()));
    }
    statuses
}

fn bytes_of(n: usize) -> Vec<u8> {
    vec![b' '; n]
}
