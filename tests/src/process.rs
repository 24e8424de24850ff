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

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    // The kernel may hand the same ephemeral port out again once its probe listener is closed,
    // so two processes of one test could be given one port: never return a port twice.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
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
    /// Starts `binary` with exactly `env` (plus PATH), in a scratch directory so a developer's
    /// `.env` cannot leak in.
    pub fn start(binary: &str, port: u16, env: &[(String, String)]) -> Self {
        let log_path = log_dir().join(format!(
            "{binary}-{port}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
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
