//! A real SMTP server (aiosmtpd, from `scripts/test`'s virtualenv) that records what it accepts.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How the server answers deliveries.
#[derive(Clone, Copy, Debug)]
pub enum SmtpBehaviour {
    Accept,
    /// 451 for the first `n` deliveries, then accept.
    FailTransient(u32),
    /// 550 for every delivery.
    FailPermanent,
    /// Accept without recording (benchmarks: the sink must not be the bottleneck).
    Sink,
    /// Accept and record, but answer each delivery only after this long (a slow server):
    /// the message's body has been sent, the verdict waits.
    AcceptAfter(Duration),
    /// Hold the first `RCPT TO` of each recipient this long before accepting it; later ones
    /// pass at once (a server hanging before the body: nothing was handed over).
    StallFirstRcpt(Duration),
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    out: PathBuf,
}

impl SmtpServer {
    pub fn start(behaviour: SmtpBehaviour) -> Self {
        Self::spawn(|command| match behaviour {
            SmtpBehaviour::Accept => {}
            SmtpBehaviour::FailTransient(n) => {
                command.arg("--fail-transient").arg(n.to_string());
            }
            SmtpBehaviour::FailPermanent => {
                command.arg("--fail-permanent");
            }
            SmtpBehaviour::Sink => {
                command.arg("--sink");
            }
            SmtpBehaviour::AcceptAfter(delay) => {
                command.arg("--delay").arg(delay.as_secs_f64().to_string());
            }
            SmtpBehaviour::StallFirstRcpt(stall) => {
                command
                    .arg("--stall-first-rcpt")
                    .arg(stall.as_secs_f64().to_string());
            }
        })
    }

    /// The fault suite's sink: answers by recipient (`flaky-`, `reject-`, `stall-` local parts),
    /// or, while `control` holds `4xx` / `5xx` / `stall`, answers every delivery so; every
    /// attempt is logged to `attempts` (see tests/smtp/server.py).
    pub fn start_chaos(control: &std::path::Path, attempts: &std::path::Path) -> Self {
        Self::spawn(|command| {
            command
                .arg("--chaos")
                .arg("--control")
                .arg(control)
                .arg("--attempts")
                .arg(attempts);
        })
    }

    fn spawn(configure: impl FnOnce(&mut Command)) -> Self {
        let venv = std::env::var("HERALD_VENV")
            .expect("HERALD_VENV names the test virtualenv (scripts/test sets it)");
        let out = std::env::temp_dir().join(format!(
            "herald-smtp-{}.jsonl",
            uuid::Uuid::new_v4().simple()
        ));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py");
        let mut command = Command::new(PathBuf::from(venv).join("bin/python"));
        command.arg(script).arg("--out").arg(&out);
        configure(&mut command);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("smtp server output");
        // It listens on a port the kernel picked and says which: "ready <port>".
        let port = ready
            .trim()
            .strip_prefix("ready ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("SMTP server did not start: {ready:?}"));
        Self { child, port, out }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message accepted so far.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits until at least `count` messages arrived; panics after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} emails arrived",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
    }
}
