//! One client connection, from the handshake to the close.
//!
//! 1. Handshake: the client's first record, within the handshake timeout.
//! 2. Subscription: the user's channel is subscribed on Redis before the handshake is
//!    answered, so once the client's `start()` resolves no event published afterwards is lost.
//! 3. Catch-up, when the client sent `lastEventAt` ([`super::catch_up`]).
//! 4. Live: events from the outbox, keep-alive pings, client messages, timeouts, shutdown.
//!
//! One task per connection and nothing else: it holds the socket halves, a few timestamps and
//! one timer, so an idle connection costs little memory. The live loop polls everything it
//! waits on together, so a client that stops reading cannot stall shutdown, timeouts or the
//! overflow check.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use herald_shared::events::user_channel;
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep, sleep_until, timeout, timeout_at};

use super::catch_up::{self, Seam};
use super::credentials::HubUser;
use super::outbox::{Delivery, Outbox};
use super::protocol::{self, ClientMessage, RecordReader};
use super::registry::Membership;
use super::{Counted, Hub};

/// Event records per WebSocket frame when several are waiting: fewer writes under a burst.
const MAX_EVENTS_PER_FRAME: usize = 64;
/// Rounds of the live loop in one poll before a busy connection yields to the others.
const ROUNDS_PER_POLL: usize = 32;
/// Replayed events are sent in frames of about this size.
const REPLAY_FRAME_BYTES: usize = 64 * 1024;
/// A write before the live loop (handshake answer, replay) that takes longer is abandoned.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to flush a farewell (Close message and frame) to a client.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// A catch-up query that takes longer fails the connection (the client reconnects).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection over the per-user limit is closed (negotiate answers 429 with the same).
pub const TOO_MANY_CONNECTIONS: &str = "Too many connections: this user already has the most \
     hub connections a node allows (HERALD_HUB_MAX_CONNECTIONS_PER_USER); close one first.";

/// What a new connection needs, decided by the upgrade request.
pub struct Params {
    pub hub: Hub,
    pub user: HubUser,
    pub client_id: Option<String>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub db: PgPool,
    /// Counts the connection (for the shutdown drain) until the task ends.
    pub counted: Counted,
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
    /// The user's token expired ([`super::expiry`]).
    TokenExpired,
    /// The API key that minted the user's token was revoked.
    KeyRevoked,
    /// The node's Redis subscription dropped while this connection was live: it may have
    /// missed events, so the client reconnects and catches up.
    EventsLost,
    /// The user already holds `HERALD_HUB_MAX_CONNECTIONS_PER_USER` connections on this node.
    TooManyConnections,
}

/// The task serving an upgraded connection until it ends; spawn it.
///
/// Not an `async fn`: an async fn keeps its arguments (the whole socket, before the split)
/// in its state for as long as it runs, and this one runs for hours on every connection.
pub fn serve(socket: WebSocketStream, params: Params) -> impl Future<Output = ()> + Send {
    let (sink, stream) = socket.split();
    let connection = Connection {
        shutdown: params.hub.shutdown_receiver(),
        sink,
        stream,
        reader: RecordReader::default(),
        outgoing: String::new(),
        in_flight: None,
        unflushed: false,
        accepted: false,
    };
    run(connection, params)
}

async fn run(mut connection: Connection, params: Params) {
    // The task's memory is sized for its largest state, held for the connection's whole life:
    // the short, large phases (handshake, catch-up query, goodbye) are boxed so an idle
    // connection only carries the live loop.
    let end = match Box::pin(connection.open(&params)).await {
        Ok((membership, seam)) => connection.live(&membership, seam, &params).await,
        Err(end) => end,
    };
    Box::pin(connection.finish(&end)).await;
    let (tenant_id, user_id) = (params.user.tenant_id, params.user.user_id.as_str());
    let client_id = params.client_id.as_deref().unwrap_or_default();
    match end {
        End::TooSlow => tracing::warn!(
            %tenant_id, user_id, client_id,
            "disconnected a client that stopped reading (its event queue was full)"
        ),
        End::EventsLost => tracing::info!(
            %tenant_id, user_id, client_id,
            "told a client to reconnect: the Redis subscription dropped while it was connected"
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
    /// A frame was handed to the socket but not flushed yet.
    unflushed: bool,
    /// Whether the handshake was answered (Close messages are only valid after it).
    accepted: bool,
}

/// The live loop's own state.
struct Live {
    /// Filters live events against the catch-up replay, for a while after it.
    seam: Option<Box<Seam>>,
    keep_alive: Duration,
    client_timeout: Duration,
    last_sent: Instant,
    last_heard: Instant,
}

impl Live {
    /// Takes waiting events into the text to send, minus those the catch-up already sent.
    fn take_events(
        &mut self,
        cx: &mut Context<'_>,
        outbox: &Outbox,
        accepting: bool,
        outgoing: &mut String,
    ) -> Poll<Delivery> {
        let seam = &self.seam;
        let taken = outbox.poll_take(cx, MAX_EVENTS_PER_FRAME, accepting, |record| {
            if seam.as_ref().is_none_or(|seam| seam.admits(&record)) {
                outgoing.push_str(&record);
            }
        });
        if taken.is_ready() && self.seam.as_ref().is_some_and(|seam| seam.is_over()) {
            self.seam = None;
        }
        taken
    }
}

/// Whether the live loop goes on.
enum Flow {
    Continue,
    Stop(End),
}

impl Connection {
    /// Handshake, subscription and catch-up: what must happen before the live loop.
    async fn open(&mut self, params: &Params) -> Result<(Membership, Option<Box<Seam>>), End> {
        if *self.shutdown.borrow() {
            return Err(End::Shutdown);
        }
        let config = params.hub.config();
        let deadline = Instant::now() + config.handshake_timeout;
        let leftover = self.handshake(deadline).await?;

        let channel = user_channel(
            params.hub.redis_prefix(),
            params.user.tenant_id,
            params.user.user_id.as_str(),
        );
        let (membership, subscribed) = params
            .hub
            .registry()
            .join_within(&channel, config.max_connections_per_user)
            .ok_or(End::TooManyConnections)?;
        membership.outbox().set_lease(params.user.lease);
        if let Some(subscribed) = subscribed {
            tokio::select! {
                confirmed = timeout_at(deadline, subscribed) => {
                    if !matches!(confirmed, Ok(Ok(()))) {
                        return Err(End::Unavailable);
                    }
                }
                _ = self.shutdown.changed() => return Err(End::Shutdown),
            }
        }
        if !self.send_now(protocol::HANDSHAKE_OK.to_owned()).await {
            return Err(End::SocketClosed);
        }
        self.accepted = true;

        let seam = match params.last_event_at {
            Some(since) => {
                Some(Box::new(self.catch_up(params, since).await?)).filter(|seam| !seam.is_over())
            }
            None => None,
        };
        if let Flow::Stop(end) = self.handle_records(leftover) {
            return Err(end);
        }
        Ok((membership, seam))
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
        seam: Option<Box<Seam>>,
        params: &Params,
    ) -> End {
        let config = params.hub.config();
        let now = Instant::now();
        let mut live = Live {
            seam,
            keep_alive: config.keep_alive,
            client_timeout: config.client_timeout,
            last_sent: now,
            last_heard: now,
        };
        let timer = sleep_until(now + live.keep_alive.min(live.client_timeout));
        tokio::pin!(timer);
        std::future::poll_fn(|cx| {
            self.poll_live(cx, membership.outbox(), &mut live, timer.as_mut())
        })
        .await
    }

    /// The live loop, written as one poll rather than a `select!`: an event arriving is taken
    /// from the outbox, written and flushed within a single wake-up of the task (delivering to
    /// 15,000 connections is 15,000 such wake-ups), and the loop's state stays a few fields.
    fn poll_live(
        &mut self,
        cx: &mut Context<'_>,
        outbox: &Outbox,
        live: &mut Live,
        mut timer: Pin<&mut Sleep>,
    ) -> Poll<End> {
        // A source that answered Pending has registered this wake-up and will call again;
        // polling it in every round would only add work to each event delivered.
        let mut read_registered = false;
        let mut timer_registered = false;
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;

            // Events move on only when nothing waits to be written: under backpressure they
            // stay in the bounded outbox, which is what disconnects a client that stopped
            // reading. Its end states are reported at any time.
            let accepting = self.in_flight.is_none() && !self.unflushed && self.outgoing.is_empty();
            match live.take_events(cx, outbox, accepting, &mut self.outgoing) {
                Poll::Ready(Delivery::Events) => progress = true,
                Poll::Ready(Delivery::Overflowed) => return Poll::Ready(End::TooSlow),
                Poll::Ready(Delivery::ShuttingDown) => return Poll::Ready(End::Shutdown),
                Poll::Ready(Delivery::TokenExpired) => return Poll::Ready(End::TokenExpired),
                Poll::Ready(Delivery::KeyRevoked) => return Poll::Ready(End::KeyRevoked),
                Poll::Ready(Delivery::EventsLost) => return Poll::Ready(End::EventsLost),
                Poll::Pending => {}
            }

            if self.in_flight.is_none() && !self.unflushed && !self.outgoing.is_empty() {
                self.in_flight = Some(Message::Text(std::mem::take(&mut self.outgoing)));
            }
            if self.in_flight.is_some() || self.unflushed {
                match self.poll_write(cx) {
                    Poll::Ready(Ok(())) => {
                        live.last_sent = Instant::now();
                        progress = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(End::SocketClosed),
                    Poll::Pending => {}
                }
            }

            // Answers to the client wait in `outgoing`; reading pauses until they are sent, so
            // a client that sends without reading cannot grow them.
            if !read_registered && self.outgoing.is_empty() {
                match self.stream.poll_next_unpin(cx) {
                    Poll::Ready(frame) => {
                        live.last_heard = Instant::now();
                        progress = true;
                        let flow = match text_of(frame) {
                            Ok(Some(text)) => self.handle_text(&text),
                            Ok(None) => Flow::Continue,
                            Err(end) => Flow::Stop(end),
                        };
                        if let Flow::Stop(end) = flow {
                            return Poll::Ready(end);
                        }
                    }
                    Poll::Pending => read_registered = true,
                }
            }

            if !timer_registered {
                if timer.as_mut().poll(cx).is_pending() {
                    timer_registered = true;
                } else {
                    let now = Instant::now();
                    if now >= live.last_heard + live.client_timeout {
                        return Poll::Ready(End::ClientTimeout);
                    }
                    if now >= live.last_sent + live.keep_alive {
                        // A frame being written keeps the client alive as well as a ping would.
                        let idle = self.in_flight.is_none() && !self.unflushed;
                        if idle && self.outgoing.is_empty() {
                            self.outgoing.push_str(protocol::PING);
                        }
                        live.last_sent = now;
                    }
                    let next = (live.last_heard + live.client_timeout)
                        .min(live.last_sent + live.keep_alive);
                    timer.as_mut().reset(next);
                    progress = true;
                }
            }

            if !progress {
                return Poll::Pending;
            }
        }
        // A busy connection yields after a while so the others on this thread get their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes the frame in flight, then flushes; the frame stays in `in_flight` until the sink
    /// accepted it, and `unflushed` remembers a flush still owed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.in_flight.is_some() {
            ready!(self.sink.poll_ready_unpin(cx))?;
            if let Some(message) = self.in_flight.take() {
                self.sink.start_send_unpin(message)?;
                self.unflushed = true;
            }
        }
        ready!(self.sink.poll_flush_unpin(cx))?;
        self.unflushed = false;
        Poll::Ready(Ok(()))
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
            End::EventsLost => Some(protocol::close(
                Some(
                    "The hub's event subscription was interrupted; reconnect with lastEventAt \
                     to receive what you missed.",
                ),
                true,
            )),
            End::ClientTimeout => Some(protocol::close(
                Some("Server timeout elapsed without receiving a message from the client."),
                true,
            )),
            // The client's token factory is asked for a fresh token when it reconnects: a token
            // from a key still valid connects again, the revoked key's is refused with 401.
            End::TokenExpired => Some(protocol::close(
                Some("The access token expired; reconnect with a fresh one."),
                true,
            )),
            End::KeyRevoked => Some(protocol::close(
                Some("The API key that issued the access token was revoked."),
                true,
            )),
            End::ProtocolError(reason) if self.accepted => {
                Some(protocol::close(Some(reason), false))
            }
            End::ProtocolError(reason) => Some(protocol::handshake_error(reason)),
            // Refused before the handshake was answered: accept it, then close with the reason
            // and without reconnect (a retry would meet the same limit).
            End::TooManyConnections => Some(format!(
                "{}{}",
                protocol::HANDSHAKE_OK,
                protocol::close(Some(TOO_MANY_CONNECTIONS), false)
            )),
            End::Shutdown | End::HandshakeTimeout | End::ClientLeft => None,
        };
        if let Some(record) = farewell {
            self.outgoing.push_str(&record);
        }
        let flushed = async {
            std::future::poll_fn(|cx| self.poll_write(cx)).await?;
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
