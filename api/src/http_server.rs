//! Serving connections with timeouts, which poem's `Server` cannot set: a client that sends half
//! a request head and stops (slowloris) or an idle connection must not hold a file descriptor
//! forever.
//!
//! Each accepted connection is driven by hyper-util's HTTP/1.1 + HTTP/2 builder directly:
//! - hyper's header read timeout bounds the time to send a whole HTTP/1.1 request head, however
//!   slowly the bytes trickle in; hyper restarts it after each response, so it also closes a
//!   keep-alive connection that sends no next request;
//! - the idle timeout closes a connection (HTTP/1.1 or HTTP/2) on which nothing was read or
//!   written for that long, gracefully: a request in progress is answered first.
//!
//! A WebSocket upgrade ends hyper's part of the connection; the socket then belongs to the hub
//! and neither timeout applies to it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::endpoint::{DynEndpoint, ToDynEndpoint};
use poem::listener::Acceptor;
use poem::{Endpoint, EndpointExt, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::listener::NoDelayAcceptor;

/// poem's response body type, as hyper sees it.
type ResponseBody = http_body_util::combinators::BoxBody<Bytes, io::Error>;

type App = Arc<dyn DynEndpoint<Output = Response>>;

/// How long a connection may take over what.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To send a whole HTTP/1.1 request head (and, between requests, to start the next one).
    pub header: Duration,
    /// With nothing read or written.
    pub idle: Duration,
    /// After the shutdown signal, for in-flight requests to finish.
    pub shutdown: Duration,
}

/// Serves `app` on `acceptor` until `signal` resolves, then stops accepting, lets in-flight
/// requests finish (at most `timeouts.shutdown`) and returns.
pub async fn serve(
    mut acceptor: NoDelayAcceptor,
    app: impl Endpoint + 'static,
    timeouts: Timeouts,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    let app: App = Arc::new(ToDynEndpoint(app.map_to_response()));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = acceptor.accept() => match accepted {
                Ok((stream, local, remote, scheme)) => {
                    let connection = Connection { app: app.clone(), local, remote, scheme };
                    connections.spawn(connection.serve(stream, timeouts, stopped.clone()));
                }
                // Out of file descriptors, say: the next accept may succeed, and spinning on
                // the error would burn the CPU the other connections need.
                Err(error) => {
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(acceptor);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(timeouts.shutdown, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "HTTP connections still busy after the shutdown timeout; closing them"
        );
    }
    Ok(())
}

struct Connection {
    app: App,
    local: poem::web::LocalAddr,
    remote: poem::web::RemoteAddr,
    scheme: poem::http::uri::Scheme,
}

impl Connection {
    async fn serve(
        self,
        stream: TcpStream,
        timeouts: Timeouts,
        mut stopped: watch::Receiver<bool>,
    ) {
        let activity = Activity::new();
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let remote = self.remote.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let app = self.app.clone();
            let request = poem::Request::from((
                request,
                self.local.clone(),
                self.remote.clone(),
                self.scheme.clone(),
            ));
            async move {
                let response = app.get_response(request).await;
                Ok::<_, Infallible>(hyper::Response::<ResponseBody>::from(response))
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.header);
        // poem's defaults, kept.
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_pending_accept_reset_streams(20)
            .max_header_list_size(16384);
        let connection = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = activity.idle_for(timeouts.idle) => {
                tracing::debug!(remote_addr = %remote, "closing an idle connection");
            }
            _ = stopped.wait_for(|stop| *stop) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

/// When a connection last read or wrote, in milliseconds since it was accepted.
#[derive(Clone)]
struct Activity {
    since: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let now = self.since.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Resolves once nothing happened for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.since + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// The socket, noting each successful read and write in its [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
