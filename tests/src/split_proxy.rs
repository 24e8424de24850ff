//! A tiny reverse proxy that sends a hub's two requests to different nodes — negotiate to one,
//! the WebSocket upgrade to another, anything else to a third address — as a load balancer
//! without sticky sessions may. It routes each TCP connection by its first request line and
//! then copies bytes both ways; it stops when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Ports the proxy forwards to.
#[derive(Clone, Copy, Debug)]
pub struct Routes {
    /// `POST …/hub/negotiate`
    pub negotiate: u16,
    /// `GET …/hub…` (the upgrade)
    pub upgrade: u16,
    /// Everything else (REST calls of the client's own code).
    pub other: u16,
}

pub struct SplitProxy {
    pub port: u16,
    negotiates: Arc<AtomicUsize>,
    upgrades: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SplitProxy {
    pub async fn start(routes: Routes) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let negotiates = Arc::new(AtomicUsize::new(0));
        let upgrades = Arc::new(AtomicUsize::new(0));
        let counters = (negotiates.clone(), upgrades.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counters = counters.clone();
                tokio::spawn(async move {
                    let _ = forward(client, routes, &counters.0, &counters.1).await;
                });
            }
        });
        Self {
            port,
            negotiates,
            upgrades,
            task,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections routed as negotiate requests so far.
    pub fn negotiates(&self) -> usize {
        self.negotiates.load(Ordering::SeqCst)
    }

    /// Connections routed as WebSocket upgrades so far.
    pub fn upgrades(&self) -> usize {
        self.upgrades.load(Ordering::SeqCst)
    }
}

impl Drop for SplitProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    mut client: TcpStream,
    routes: Routes,
    negotiates: &AtomicUsize,
    upgrades: &AtomicUsize,
) -> std::io::Result<()> {
    // Read until the request line is complete (it is short; 8 KiB is plenty).
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let read = client.read(&mut chunk).await?;
        if read == 0 || head.len() > 8 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split(' ').nth(1).unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    let port = if path.ends_with("/v1/hub/negotiate") {
        negotiates.fetch_add(1, Ordering::SeqCst);
        routes.negotiate
    } else if line.starts_with("GET ") && path.ends_with("/v1/hub") {
        upgrades.fetch_add(1, Ordering::SeqCst);
        routes.upgrade
    } else {
        routes.other
    };
    let mut upstream = TcpStream::connect(("127.0.0.1", port)).await?;
    upstream.write_all(&head).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
