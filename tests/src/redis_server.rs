//! A private `redis-server` for tests that stop, restart or flush Redis, so no other test
//! running in parallel loses its Redis.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::closed_port;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    /// Starts `redis-server` without persistence on a free port; returns once it accepts
    /// connections. Redis cannot be told to pick its own port (`--port 0` turns TCP off), so a
    /// port another process took first is tried again with another.
    pub async fn start() -> Self {
        for _ in 0..20 {
            if let Some(server) = Self::try_start(closed_port()).await {
                return server;
            }
        }
        panic!("redis-server found no free port in 20 tries");
    }

    /// Starts `redis-server` on `port` (a restart where clients expect it); panics if it cannot.
    pub async fn start_on(port: u16) -> Self {
        Self::try_start(port)
            .await
            .unwrap_or_else(|| panic!("redis-server could not listen on port {port}"))
    }

    /// `None` when the server exited (the port was taken) or another process answers on it.
    async fn try_start(port: u16) -> Option<Self> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test ensures it)");
        for _ in 0..250 {
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            if let Some(pid) = server_pid(port).await {
                if pid == child.id() {
                    return Some(Self {
                        child: Some(child),
                        port,
                    });
                }
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server on port {port} did not answer within 5 s");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Loses everything, as a Redis without persistence does when it restarts.
    pub async fn flush_all(&self) {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut conn)
            .await
            .expect("FLUSHALL");
    }

    /// Kills the server (every connection to it drops).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `process_id` of the Redis answering on `port`, if one does.
async fn server_pid(port: u16) -> Option<u32> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
