//! The listening socket: accepted connections send at once (`TCP_NODELAY`).
//!
//! The hub writes each event to a client as its own small WebSocket frame, and events follow
//! each other by a few milliseconds. With Nagle's algorithm on (poem leaves it on), a frame
//! written while the previous one is still unacknowledged waits for the client's ACK, which
//! the client delays (up to 40 ms on Linux) because it has nothing to send back.

use std::io;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::TcpStream;

pub struct NoDelayAcceptor(TcpAcceptor);

impl NoDelayAcceptor {
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        TcpAcceptor::from_std(listener).map(Self)
    }
}

impl Acceptor for NoDelayAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(TcpStream, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, scheme) = self.0.accept().await?;
        // Only fails on a socket that is already gone; serving it then fails on its own.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set on an accepted connection");
        }
        Ok((stream, local, remote, scheme))
    }
}
