//! A hand-driven hub client speaking the SignalR JSON protocol over a plain WebSocket, for what
//! the official client cannot be made to do: stop reading, stay silent, skip negotiation, use
//! negotiate version 0, send a token in the query, invoke a method.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The record separator ending every SignalR JSON record.
pub const RS: char = '\u{1e}';

/// What a connection attempt came to.
#[derive(Debug)]
pub enum Refused {
    /// The server answered the upgrade with this HTTP status.
    Status(u16),
    Other(String),
}

/// What the server sent before closing.
#[derive(Debug, Default)]
pub struct Ending {
    /// Records received until the close, pings excluded.
    pub records: Vec<Value>,
    /// The WebSocket close code, when the server sent a Close frame.
    pub close_code: Option<u16>,
}

pub struct RawHubClient {
    ws: WebSocketStream<TcpStream>,
    partial: String,
    records: VecDeque<Value>,
}

impl RawHubClient {
    /// Opens the WebSocket at `url` (`ws://…/hub?…`), with a bearer header when given.
    pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Self, Refused> {
        let stream = TcpStream::connect(host_port(url))
            .await
            .map_err(|e| Refused::Other(e.to_string()))?;
        Self::connect_over(stream, url, bearer).await
    }

    /// Like [`RawHubClient::connect`], over a socket whose receive buffer is tiny, so a
    /// client that stops reading backs up into the server quickly.
    pub async fn connect_with_small_receive_buffer(
        url: &str,
        bearer: Option<&str>,
    ) -> Result<Self, Refused> {
        let address = tokio::net::lookup_host(host_port(url))
            .await
            .ok()
            .and_then(|mut addresses| addresses.next())
            .ok_or_else(|| Refused::Other("unresolvable".to_owned()))?;
        let socket = TcpSocket::new_v4().map_err(|e| Refused::Other(e.to_string()))?;
        socket
            .set_recv_buffer_size(4096)
            .map_err(|e| Refused::Other(e.to_string()))?;
        let stream = socket
            .connect(address)
            .await
            .map_err(|e| Refused::Other(e.to_string()))?;
        Self::connect_over(stream, url, bearer).await
    }

    async fn connect_over(
        stream: TcpStream,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<Self, Refused> {
        let mut request = url
            .into_client_request()
            .map_err(|e| Refused::Other(e.to_string()))?;
        if let Some(token) = bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
            request.headers_mut().insert("authorization", value);
        }
        match tokio_tungstenite::client_async(request, stream).await {
            Ok((ws, _)) => Ok(Self {
                ws,
                partial: String::new(),
                records: VecDeque::new(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(Refused::Status(response.status().as_u16()))
            }
            Err(error) => Err(Refused::Other(error.to_string())),
        }
    }

    /// Sends one text frame as is (several records may share it).
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("send a frame");
    }

    /// Sends the JSON protocol handshake and returns the server's answer (`{}` on success).
    pub async fn handshake(&mut self) -> Value {
        self.send_text(&format!("{{\"protocol\":\"json\",\"version\":1}}{RS}"))
            .await;
        self.next_record(Duration::from_secs(15))
            .await
            .expect("a handshake response")
    }

    /// The next record (pings included), or `None` after `timeout` or when the connection ends.
    pub async fn next_record(&mut self, timeout: Duration) -> Option<Value> {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(record) = self.records.pop_front() {
                    return Some(record);
                }
                match self.ws.next().await? {
                    Ok(Message::Text(text)) => self.split(&text),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next record that is not a ping.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let record = self.next_record(left).await?;
            if record["type"] != 6 {
                return Some(record);
            }
        }
    }

    /// Reads until the server closes (or `timeout` passes: then `None`).
    pub async fn ending(&mut self, timeout: Duration) -> Option<Ending> {
        let mut ending = Ending::default();
        tokio::time::timeout(timeout, async {
            loop {
                while let Some(record) = self.records.pop_front() {
                    if record["type"] != 6 {
                        ending.records.push(record);
                    }
                }
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => self.split(&text),
                    Some(Ok(Message::Close(frame))) => {
                        ending.close_code = frame.map(|frame| u16::from(frame.code));
                        return;
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => return,
                }
            }
        })
        .await
        .ok()?;
        Some(ending)
    }

    fn split(&mut self, text: &str) {
        self.partial.push_str(text);
        while let Some(end) = self.partial.find(RS) {
            let record: String = self.partial.drain(..=end).collect();
            let json = &record[..record.len() - RS.len_utf8()];
            let value = serde_json::from_str(json)
                .unwrap_or_else(|_| panic!("the server sent a record that is not JSON: {json}"));
            self.records.push_back(value);
        }
    }
}

/// `host:port` of a `ws://host:port/…` URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}
