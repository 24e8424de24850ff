//! One client connection, from the handshake to the close.
//!
//! 1. Handshake: the client's first record, within the handshake timeout.
//! 2. Subscription: the user's channel is subscribed on Redis before the handshake is
//!    answered, so once the client's `start()` resolves no event published afterwards is lost.
//! 3. Catch-up, when the client sent `lastEventAt` ([`super::catch_up`]).
//! 4. Live: events from the outbox, keep-alive pings, client messages, timeouts, shutdown.
//!
//! One task per connection and nothing else: it holds the socket halves, a few timestamps and
//! one timer, so an idle connection costs little memory. Every wait sits in one `select!`, so
//! a client that stops reading cannot stall shutdown, timeouts or the overflow check.

use std::io;
use std::task::ready;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use herald_shared::events::user_channel;
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use super::Hub;
use super::catch_up::{self, Seam};
use super::credentials::HubUser;
use super::outbox::Delivery;
use super::protocol::{self, ClientMessage, RecordReader};
use super::registry::Membership;

/// Event records per WebSocket frame when several are waiting: fewer writes under a burst.
const MAX_EVENTS_PER_FRAME: usize = 64;
/// Replayed events are sent in frames of about this size.
const REPLAY_FRAME_BYTES: usize = 64 * 1024;
/// A write before the live loop (handshake answer, replay) that takes longer is abandoned.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to flush a farewell (Close message and frame) to a client.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// A catch-up query that takes longer fails the connection (the client reconnects).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a new connection needs, decided by the upgrade request.
pub struct Params {
    pub hub: Hub,
    pub user: HubUser,
    pub client_id: Option<String>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub db: PgPool,
}

type Sink = SplitSink<WebSocketStream, Message>;
type Stream = SplitStream<WebSocketStream>;

/// Why a connection ended, which decides what the client is told.
#[derive(Debug)]
enum End {
    /// The node is stopping; the client should reconnect (to another node).
    Shutdown,
    HandshakeRefused(String),
    HandshakeTimeout,
    /// The user's channel could not be subscribed in time.
    Unavailable,
    CatchUpFailed,
    ClientTimeout,
    /// The client broke the protocol; it is told why and must not reconnect blindly.
    ProtocolError(String),
    ClientLeft,
    SocketClosed,
    /// The client stopped reading and its outbox overflowed.
    TooSlow,
}

/// Serves an upgraded connection until it ends.
pub async fn serve(socket: WebSocketStream, params: Params) {
    let (sink, stream) = socket.split();
    let mut connection = Connection {
        shutdown: params.hub.shutdown_receiver(),
        sink,
        stream,
        reader: RecordReader::default(),
        outgoing: String::new(),
        in_flight: None,
        accepted: false,
    };
    let end = connection.run(&params).await;
    connection.finish(&end).await;
    let (tenant_id, user_id) = (params.user.tenant_id, params.user.user_id.as_str());
    let client_id = params.client_id.as_deref().unwrap_or_default();
    match end {
        End::TooSlow => tracing::warn!(
            %tenant_id, user_id, client_id,
            "disconnected a client that stopped reading (its event queue was full)"
        ),
        End::CatchUpFailed => tracing::warn!(
            %tenant_id, user_id, client_id, "closed a connection whose catch-up failed"
        ),
        end => tracing::debug!(%tenant_id, user_id, client_id, ?end, "connection ended"),
    }
}

struct Connection {
    shutdown: watch::Receiver<bool>,
    sink: Sink,
    stream: Stream,
    reader: RecordReader,
    /// Records to send next (answers to the client, events, pings).
    outgoing: String,
    /// The frame being written.
    in_flight: Option<Message>,
    /// Whether the handshake was answered (Close messages are only valid after it).
    accepted: bool,
}

/// Whether the live loop goes on.
enum Flow {
    Continue,
    Stop(End),
}

impl Connection {
    async fn run(&mut self, params: &Params) -> End {
        if *self.shutdown.borrow() {
            return End::Shutdown;
        }
        let config = params.hub.config();
        let deadline = Instant::now() + config.handshake_timeout;
        let leftover = match self.handshake(deadline).await {
            Ok(leftover) => leftover,
            Err(end) => return end,
        };

        let channel = user_channel(
            params.hub.redis_prefix(),
            params.user.tenant_id,
            params.user.user_id.as_str(),
        );
        let (membership, subscribed) = params.hub.registry().join(&channel);
        if let Some(subscribed) = subscribed {
            tokio::select! {
                confirmed = timeout_at(deadline, subscribed) => {
                    if !matches!(confirmed, Ok(Ok(()))) {
                        return End::Unavailable;
                    }
                }
                _ = self.shutdown.changed() => return End::Shutdown,
            }
        }
        if !self.send_now(protocol::HANDSHAKE_OK.to_owned()).await {
            return End::SocketClosed;
        }
        self.accepted = true;

        let seam = match params.last_event_at {
            Some(since) => match self.catch_up(params, since).await {
                Ok(seam) => Some(seam).filter(|seam| !seam.is_over()),
                Err(end) => return end,
            },
            None => None,
        };
        if let Flow::Stop(end) = self.handle_records(leftover) {
            return end;
        }
        self.live(&membership, seam, params).await
    }

    /// Reads the handshake request; returns the records that followed it in the same frame.
    async fn handshake(&mut self, deadline: Instant) -> Result<Vec<String>, End> {
        loop {
            let frame = tokio::select! {
                frame = timeout_at(deadline, self.stream.next()) => {
                    frame.map_err(|_| End::HandshakeTimeout)?
                }
                _ = self.shutdown.changed() => return Err(End::Shutdown),
            };
            let Some(text) = text_of(frame)? else {
                continue;
            };
            let mut records = self.reader.push(&text).map_err(|_| {
                End::HandshakeRefused("The handshake request is too large.".to_owned())
            })?;
            if records.is_empty() {
                continue;
            }
            let request = records.remove(0);
            protocol::check_handshake(&request).map_err(End::HandshakeRefused)?;
            return Ok(records);
        }
    }

    /// Sends the missed `Message` events; returns the filter for the live events after them.
    async fn catch_up(&mut self, params: &Params, since: DateTime<Utc>) -> Result<Seam, End> {
        let query = timeout(
            CATCH_UP_TIMEOUT,
            catch_up::missed_events(&params.db, &params.user, since),
        );
        let result = tokio::select! {
            result = query => result,
            _ = self.shutdown.changed() => return Err(End::Shutdown),
        };
        let (records, seam) = match result {
            Ok(Ok(replay)) => replay,
            Ok(Err(error)) => {
                tracing::error!(%error, tenant_id = %params.user.tenant_id, "catch-up query failed");
                return Err(End::CatchUpFailed);
            }
            Err(_) => {
                tracing::error!(tenant_id = %params.user.tenant_id, "catch-up query timed out");
                return Err(End::CatchUpFailed);
            }
        };
        let mut frame = String::new();
        for record in &records {
            frame.push_str(record);
            if frame.len() >= REPLAY_FRAME_BYTES && !self.send_now(std::mem::take(&mut frame)).await
            {
                return Err(End::SocketClosed);
            }
        }
        if !frame.is_empty() && !self.send_now(frame).await {
            return Err(End::SocketClosed);
        }
        Ok(seam)
    }

    async fn live(
        &mut self,
        membership: &Membership,
        mut seam: Option<Seam>,
        params: &Params,
    ) -> End {
        let config = params.hub.config();
        let (keep_alive, client_timeout) = (config.keep_alive, config.client_timeout);
        let mut batch = Vec::new();
        let mut last_sent = Instant::now();
        let mut last_heard = last_sent;
        let timer = sleep_until(last_sent + keep_alive.min(client_timeout));
        tokio::pin!(timer);
        loop {
            if self.in_flight.is_none() && !self.outgoing.is_empty() {
                self.in_flight = Some(Message::Text(std::mem::take(&mut self.outgoing)));
            }
            let writing = self.in_flight.is_some();
            let idle_output = self.outgoing.is_empty();
            tokio::select! {
                _ = self.shutdown.changed() => return End::Shutdown,
                delivery = membership.outbox().take(&mut batch, MAX_EVENTS_PER_FRAME, !writing) => {
                    if delivery == Delivery::Overflowed {
                        return End::TooSlow;
                    }
                    for record in batch.drain(..) {
                        if seam.as_ref().is_none_or(|seam| seam.admits(&record)) {
                            self.outgoing.push_str(&record);
                        }
                    }
                    if seam.as_ref().is_some_and(Seam::is_over) {
                        seam = None;
                    }
                }
                written = write(&mut self.sink, &mut self.in_flight), if writing => {
                    if written.is_err() {
                        return End::SocketClosed;
                    }
                    last_sent = Instant::now();
                }
                // Answers to the client wait in `outgoing`; reading pauses until they are sent,
                // so a client that sends without reading cannot grow them.
                frame = self.stream.next(), if idle_output => {
                    last_heard = Instant::now();
                    let flow = match text_of(frame) {
                        Ok(Some(text)) => self.handle_text(&text),
                        Ok(None) => Flow::Continue,
                        Err(end) => Flow::Stop(end),
                    };
                    if let Flow::Stop(end) = flow {
                        return end;
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= last_heard + client_timeout {
                        return End::ClientTimeout;
                    }
                    if now >= last_sent + keep_alive {
                        // A frame being written keeps the client alive as well as a ping would.
                        if !writing && self.outgoing.is_empty() {
                            self.outgoing.push_str(protocol::PING);
                        }
                        last_sent = now;
                    }
                    timer.as_mut().reset((last_heard + client_timeout).min(last_sent + keep_alive));
                }
            }
        }
    }

    fn handle_text(&mut self, text: &str) -> Flow {
        match self.reader.push(text) {
            Ok(records) => self.handle_records(records),
            Err(_) => Flow::Stop(End::ProtocolError(format!(
                "A message exceeded {} KiB.",
                protocol::MAX_RECORD_BYTES / 1024
            ))),
        }
    }

    fn handle_records(&mut self, records: Vec<String>) -> Flow {
        for record in records {
            match protocol::parse_message(&record) {
                Ok(ClientMessage::Invocation {
                    invocation_id: Some(id),
                    target,
                }) => {
                    let error = format!(
                        "Unknown hub method '{target}'. Herald's hub only sends events; \
                         use the REST API to act."
                    );
                    self.outgoing
                        .push_str(&protocol::completion_error(&id, &error));
                }
                Ok(ClientMessage::Close) => return Flow::Stop(End::ClientLeft),
                // Pings only prove the client is alive; a call without an id wants no answer.
                Ok(
                    ClientMessage::Ping | ClientMessage::Invocation { .. } | ClientMessage::Ignored,
                ) => {}
                Err(error) => {
                    return Flow::Stop(End::ProtocolError(format!(
                        "A message could not be read: {error}."
                    )));
                }
            }
        }
        Flow::Continue
    }

    /// Sends a text frame outside the live loop.
    async fn send_now(&mut self, text: String) -> bool {
        matches!(
            timeout(SEND_TIMEOUT, self.sink.send(Message::Text(text))).await,
            Ok(Ok(()))
        )
    }

    /// Tells the client why the connection ends (when it can still be told) and closes it.
    async fn finish(&mut self, end: &End) {
        let farewell = match end {
            End::SocketClosed | End::TooSlow => return,
            End::Shutdown if self.accepted => Some(protocol::close(None, true)),
            End::HandshakeRefused(reason) => Some(protocol::handshake_error(reason)),
            End::Unavailable => Some(protocol::handshake_error(
                "The hub cannot subscribe to your events right now; try again.",
            )),
            End::CatchUpFailed => Some(protocol::close(
                Some("Catching up on missed events failed; reconnect to try again."),
                true,
            )),
            End::ClientTimeout => Some(protocol::close(
                Some("Server timeout elapsed without receiving a message from the client."),
                true,
            )),
            End::ProtocolError(reason) if self.accepted => {
                Some(protocol::close(Some(reason), false))
            }
            End::ProtocolError(reason) => Some(protocol::handshake_error(reason)),
            End::Shutdown | End::HandshakeTimeout | End::ClientLeft => None,
        };
        if let Some(record) = farewell {
            self.outgoing.push_str(&record);
        }
        let flushed = async {
            write(&mut self.sink, &mut self.in_flight).await?;
            if !self.outgoing.is_empty() {
                let text = std::mem::take(&mut self.outgoing);
                self.sink.send(Message::Text(text)).await?;
            }
            let close = Message::Close(Some((CloseCode::Normal, String::new())));
            self.sink.send(close).await
        };
        // The client may not be reading; it does not get to delay the close.
        let _ = timeout(CLOSE_GRACE, flushed).await;
    }
}

/// The text of a client frame: `Ok(None)` for control frames, `Err` when the connection is over.
fn text_of(frame: Option<io::Result<Message>>) -> Result<Option<String>, End> {
    match frame {
        Some(Ok(Message::Text(text))) => Ok(Some(text)),
        Some(Ok(Message::Binary(bytes))) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| End::ProtocolError("The JSON protocol sends UTF-8 text.".to_owned())),
        // tungstenite answers pings itself.
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(None),
        Some(Ok(Message::Close(_))) => Err(End::ClientLeft),
        None | Some(Err(_)) => Err(End::SocketClosed),
    }
}

/// Writes the frame in flight (if any) and flushes. Cancel-safe: the frame stays in `in_flight`
/// until the sink has taken it, so a `select!` that picks another branch loses nothing.
async fn write(sink: &mut Sink, in_flight: &mut Option<Message>) -> io::Result<()> {
    std::future::poll_fn(|cx| {
        if in_flight.is_some() {
            ready!(sink.poll_ready_unpin(cx))?;
            if let Some(message) = in_flight.take() {
                sink.start_send_unpin(message)?;
            }
        }
        sink.poll_flush_unpin(cx)
    })
    .await
}
