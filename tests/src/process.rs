//! Running the real Herald binaries.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Where `cargo build --workspace --bins` put the binaries (`HERALD_BIN_DIR` overrides).
pub fn bin_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("HERALD_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/debug/deps/<test binary> → target/debug
            let exe = std::env::current_exe().expect("current exe");
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("target dir")
                .to_path_buf()
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build --workspace --bins`, as scripts/test does)",
        path.display()
    );
    path
}

/// A port nothing listens on right now, for an address that must refuse connections. Never hand
/// it to a server: another process may bind it before the server does (a server gets port 0 and
/// says which port it bound; see [`HeraldProcess::start`] and [`crate::redis_server`]).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

pub fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("herald-e2e-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

/// A running Herald process, killed when dropped. Its output goes to a log file whose contents
/// are printed when it fails to start.
pub struct HeraldProcess {
    child: Child,
    pub port: u16,
    log_path: PathBuf,
}

impl HeraldProcess {
    /// Starts `binary` with exactly `env` (plus PATH) on a port the kernel picks (`PORT=0`), in a
    /// scratch directory so a developer's `.env` cannot leak in; returns once the process has
    /// logged the address it bound.
    pub async fn start(binary: &str, env: &[(String, String)]) -> Self {
        Self::start_on(binary, 0, env).await
    }

    /// [`Self::start`] on a given port: a process restarted where its clients expect it.
    pub async fn start_on(binary: &str, port: u16, env: &[(String, String)]) -> Self {
        let mut process = Self::spawn(binary, port, env);
        process.port = process.bound_port().await;
        process
    }

    /// Starts `binary` without waiting for it to listen: for a process that must fail to start.
    /// `port` stays what was asked for (0: unknown).
    pub fn spawn(binary: &str, port: u16, env: &[(String, String)]) -> Self {
        let log_path = log_dir().join(format!("{binary}-{}.log", uuid::Uuid::new_v4().simple()));
        let log = File::create(&log_path).expect("log file");
        let child = Command::new(bin_path(binary))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .current_dir(scratch_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        Self {
            child,
            port,
            log_path,
        }
    }

    /// The port of the process's `listening on http://…` line, waiting for it (bounded).
    async fn bound_port(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = announced_port(&self.logs()) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "process exited with {status} before listening:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not listening after 20 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/healthz` answers; panics with the log if the process died or hung.
    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/healthz", self.base_url());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "process exited with {status} before becoming healthy:\n{}",
                    self.logs()
                );
            }
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not healthy after 20 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (it is reaped if so).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends SIGTERM, as a process manager does to stop a process.
    pub fn terminate(&self) {
        signal(self.child.id(), "TERM");
    }

    /// Sends SIGKILL: the process dies without any chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in the first `listening on http://<address>` a Herald process logs.
fn announced_port(log: &str) -> Option<u16> {
    const ANNOUNCEMENT: &str = "listening on http://";
    let rest = &log[log.find(ANNOUNCEMENT)? + ANNOUNCEMENT.len()..];
    let address: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    address
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.port())
}

pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

/// Runs a binary to completion (the admin CLI), with exactly `env`.
pub fn run(binary: &str, args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(bin_path(binary))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .current_dir(scratch_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"))
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("herald-e2e-cwd");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
