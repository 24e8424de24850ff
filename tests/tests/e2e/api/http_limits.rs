//! The HTTP server's own limits, whatever the protocol: the 1 MiB body limit over HTTP/2, and
//! the connection timeouts (a half-sent request head, an idle keep-alive connection).

use std::time::Duration;

use herald_shared::events::{EventType, MessagingEvent};
use herald_tests::TestApp;
use herald_tests::test_app::json_body;
use reqwest::{Client, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

/// A client speaking HTTP/2 without upgrade (h2c prior knowledge), as a proxy would.
fn h2_client() -> Client {
    Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an HTTP/2 client")
}

/// A streamed body of `total` bytes: no `Content-Length`, and over HTTP/2 no chunked framing
/// either, so only counting the bytes as they arrive can enforce a limit.
fn streamed(total: usize) -> reqwest::Body {
    let chunk = bytes_of(64 * 1024);
    let chunks = total / chunk.len();
    reqwest::Body::wrap_stream(futures::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    ))
}

fn bytes_of(n: usize) -> Vec<u8> {
    vec![b'a'; n]
}

/// The resident memory of a process, in bytes (Linux).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

async fn assert_413(response: reqwest::Response) {
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(json_body(response).await["status"], 413);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413_over_http2_with_or_without_a_length() {
    let app = TestApp::spawn().await;
    let client = h2_client();
    let url = app.tenant_url(&app.tenant, "Auth/token-exchange");
    let request = || {
        client
            .request(Method::POST, &url)
            .header("X-API-Key", &app.tenant.api_key)
            .header("Content-Type", "application/json")
    };

    let declared = request().body(bytes_of(2 * MIB)).send().await.unwrap();
    assert_eq!(declared.version(), reqwest::Version::HTTP_2);
    assert_413(declared).await;

    let undeclared = request().body(streamed(2 * MIB)).send().await.unwrap();
    assert_eq!(undeclared.version(), reqwest::Version::HTTP_2);
    assert_413(undeclared).await;

    // Under the limit the body still reaches the handler (and is judged on its content).
    let small = request().body(streamed(512 * 1024)).send().await.unwrap();
    assert_eq!(small.status(), 400);

    // The hub's negotiate route, served by the same server, holds the same limit.
    let negotiate = format!(
        "{}/tenant/{}/v1/hub/negotiate",
        app.base_url(),
        app.tenant.id
    );
    let response = client
        .post(&negotiate)
        .body(streamed(2 * MIB))
        .send()
        .await
        .unwrap();
    assert_413(response).await;
}

#[tokio::test]
async fn a_200_mb_http2_body_is_refused_without_being_held_in_memory() {
    let app = TestApp::spawn().await;
    let client = h2_client();
    let url = app.tenant_url(&app.tenant, "Auth/token-exchange");
    // Warm up: the first requests allocate pools and buffers that stay.
    for _ in 0..3 {
        let response = client
            .post(&url)
            .header("X-API-Key", &app.tenant.api_key)
            .body(streamed(2 * MIB))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
    }
    let before = rss_bytes(app.api.pid());

    let response = client
        .post(&url)
        .header("X-API-Key", &app.tenant.api_key)
        .header("Content-Type", "application/json")
        .body(streamed(200 * MIB))
        .send()
        .await
        .unwrap();
    assert_413(response).await;

    let after = rss_bytes(app.api.pid());
    let grown = after.saturating_sub(before);
    println!(
        "API RSS before {} MiB, after {} MiB, grown {} KiB (limit 32 MiB)",
        before / MIB as u64,
        after / MIB as u64,
        grown / 1024
    );
    assert!(
        grown < 32 * MIB as u64,
        "the API grew by {grown} bytes for a refused body"
    );
}

/// Far longer than the timeouts the tests configure (1 s): a server that never closes fails.
const PATIENCE: Duration = Duration::from_secs(8);

/// Reads until the server closes the connection; the bytes read, or `None` if still open after
/// `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(received)
}

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base_url().trim_start_matches("http://").to_owned();
    TcpStream::connect(address).await.expect("connect")
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_is_closed_while_other_requests_are_served() {
    let app = TestApp::spawn_with(&[
        ("HERALD_HTTP_HEADER_TIMEOUT_SECS", "1"),
        ("HERALD_HTTP_IDLE_TIMEOUT_SECS", "60"),
    ])
    .await;
    // Half a request line, then silence.
    let mut silent = connect(&app).await;
    silent.write_all(b"GET /healthz HT").await.unwrap();
    // Half a request line, then a byte now and then: never idle, never done.
    let mut trickling = connect(&app).await;
    trickling
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = trickling.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b"X").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    let healthy = app
        .client
        .get(format!("{}/healthz", app.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        healthy.status(),
        200,
        "other connections are served meanwhile"
    );

    assert!(
        read_until_closed(&mut silent).await.is_some(),
        "the silent connection is still open"
    );
    let closed = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0u8; 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the trickling connection is still open");
    trickle.abort();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(&[
        ("HERALD_HTTP_HEADER_TIMEOUT_SECS", "10"),
        ("HERALD_HTTP_IDLE_TIMEOUT_SECS", "1"),
    ])
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream)
        .await
        .expect("the idle keep-alive connection is still open");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "answered first: {text}");
}

#[tokio::test]
async fn an_upgraded_hub_connection_outlives_the_http_timeouts() {
    let app = TestApp::spawn_with(&[
        ("HERALD_HTTP_HEADER_TIMEOUT_SECS", "1"),
        ("HERALD_HTTP_IDLE_TIMEOUT_SECS", "1"),
    ])
    .await;
    let mut device = app.raw_client(&app.base_url(), "alice").await;
    // Silent for several idle timeouts (the hub's own pings come every 15 s).
    assert_eq!(device.next_message(Duration::from_secs(4)).await, None);

    let event = MessagingEvent::notification(
        EventType::NotificationDeleted,
        uuid::Uuid::now_v7(),
        chrono::Utc::now(),
    );
    app.publish(&app.tenant, "alice", vec![event]).await;
    let record = device
        .next_message(Duration::from_secs(15))
        .await
        .expect("the WebSocket is still open");
    assert_eq!(record["arguments"][0]["type"], "NotificationDeleted");
}
