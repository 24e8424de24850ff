//! Real SignalR clients: `node` running `tests/node/client.ts`, which executes a seed's client
//! code unchanged (seed 001's by default, or seed 000's chat client) with the official
//! `@microsoft/signalr` package and reports what happens as JSON lines (see that file for the
//! line kinds).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use uuid::Uuid;

use crate::process::log_dir;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Whose client code runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Seed {
    /// Seed 001: on a `Message` event, fetches `Notifications/{id}` and displays it
    /// (`notification` lines).
    #[default]
    Notifications001,
    /// Seed 000's Quick Start: on every event, fetches `Chat/{parentId}/messages/{id}` (without
    /// credentials; client.ts adds the bearer token as an app's HTTP layer would), reported as
    /// `fetched` lines.
    Chat000,
}

impl Seed {
    fn env_value(self) -> &'static str {
        match self {
            Self::Notifications001 => "001",
            Self::Chat000 => "000",
        }
    }
}

/// How a client connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The seed's `apiBaseUrl`: a `herald-api` or `herald-hub` base URL.
    pub base_url: String,
    pub tenant_id: Uuid,
    pub token: String,
    /// The token the client's factory returns once it starts reconnecting.
    pub next_token: Option<String>,
    /// Connect with `?lastEventAt=` (catch up from that time).
    pub last_event_at: Option<String>,
    /// Reconnect with `?lastEventAt=` the newest event received, as the README recommends.
    pub catch_up: bool,
    /// Whose client code runs (seed 001 by default).
    pub seed: Seed,
}

impl ClientOptions {
    pub fn new(base_url: impl Into<String>, tenant_id: Uuid, token: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            tenant_id,
            token: token.into(),
            next_token: None,
            last_event_at: None,
            catch_up: false,
            seed: Seed::default(),
        }
    }

    pub fn last_event_at(mut self, at: impl Into<String>) -> Self {
        self.last_event_at = Some(at.into());
        self
    }

    /// Reconnects with `token`, as an `accessTokenFactory` fetching a fresh token would.
    pub fn next_token(mut self, token: impl Into<String>) -> Self {
        self.next_token = Some(token.into());
        self
    }

    pub fn catch_up(mut self) -> Self {
        self.catch_up = true;
        self
    }

    /// Runs `seed`'s client code instead of seed 001's.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }
}

/// A running client; the process is killed when this is dropped.
pub struct SignalRClient {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Lines read while looking for another kind, in order.
    backlog: VecDeque<Value>,
    log_path: PathBuf,
}

impl SignalRClient {
    /// Starts a client and waits for `connection.start()` to resolve; panics if it failed.
    pub async fn connect(options: ClientOptions) -> Self {
        match Self::try_connect(options).await {
            Ok(client) => client,
            Err(failure) => panic!("connection.start() failed: {failure}"),
        }
    }

    /// Starts a client; `Err` holds the `startFailed` line when `connection.start()` rejected.
    pub async fn try_connect(options: ClientOptions) -> Result<Self, Value> {
        let mut client = Self::spawn(&options);
        let settled = tokio::time::timeout(PATIENCE, async {
            loop {
                match client.read_line().await {
                    Some(line) if line["kind"] == "started" => return Ok(()),
                    Some(line) if line["kind"] == "startFailed" => return Err(line),
                    Some(line) => client.backlog.push_back(line),
                    None => return Err(Value::Null),
                }
            }
        })
        .await;
        match settled {
            Ok(Ok(())) => Ok(client),
            Ok(Err(Value::Null)) => panic!("the client exited:\n{}", client.logs()),
            Ok(Err(failure)) => Err(failure),
            Err(_) => panic!("connection.start() did not settle:\n{}", client.logs()),
        }
    }

    fn spawn(options: &ClientOptions) -> Self {
        let dir = node_dir();
        let log_path = log_dir().join(format!("signalr-client-{}.log", Uuid::new_v4().simple()));
        let log = std::fs::File::create(&log_path).expect("client log file");
        let mut command = Command::new("node");
        command
            .args(["--import", "tsx", "node/client.ts"])
            .current_dir(&dir)
            .env("HERALD_URL", &options.base_url)
            .env("HERALD_TENANT_ID", options.tenant_id.to_string())
            .env("HERALD_TOKEN", &options.token)
            .env("HERALD_CATCH_UP", if options.catch_up { "1" } else { "0" })
            .env("HERALD_SEED", options.seed.env_value())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(at) = &options.last_event_at {
            command.env("HERALD_LAST_EVENT_AT", at);
        }
        if let Some(token) = &options.next_token {
            command.env("HERALD_NEXT_TOKEN", token);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (Node 20+ must be installed): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
            backlog: VecDeque::new(),
            log_path,
        }
    }

    async fn read_line(&mut self) -> Option<Value> {
        let line = self.lines.next_line().await.ok()??;
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("the client printed a line that is not JSON: {line}")),
        )
    }

    /// The next line of `kind` (lines of other kinds are kept for later), or `None` after
    /// `timeout`.
    pub async fn next_of(&mut self, kind: &str, timeout: Duration) -> Option<Value> {
        self.next_matching(kind, |_| true, timeout).await
    }

    /// The next line of `kind` for which `matches` holds (every other line is kept for later,
    /// in order), or `None` after `timeout`.
    pub async fn next_matching(
        &mut self,
        kind: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        let wanted = |line: &Value| line["kind"] == kind && matches(line);
        if let Some(index) = self.backlog.iter().position(wanted) {
            return self.backlog.remove(index);
        }
        tokio::time::timeout(timeout, async {
            loop {
                let line = self.read_line().await?;
                if wanted(&line) {
                    return Some(line);
                }
                self.backlog.push_back(line);
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next line of `kind` for which `matches` holds; panics (with the client's log) if
    /// none comes in time.
    pub async fn expect_matching(
        &mut self,
        kind: &str,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        match self.next_matching(kind, matches, PATIENCE).await {
            Some(line) => line,
            None => panic!(
                "no {kind:?} line ({what}) within {PATIENCE:?}; lines so far: {:?}\n{}",
                self.backlog,
                self.logs()
            ),
        }
    }

    /// The next line of `kind`; panics (with the client's log) if none comes in time.
    pub async fn expect(&mut self, kind: &str) -> Value {
        match self.next_of(kind, PATIENCE).await {
            Some(line) => line,
            None => panic!(
                "no {kind:?} line within {PATIENCE:?}; lines so far: {:?}\n{}",
                self.backlog,
                self.logs()
            ),
        }
    }

    /// The next `MessagingEvent` argument received; panics if none comes in time.
    pub async fn expect_event(&mut self) -> Value {
        self.expect("event").await["event"].take()
    }

    /// The next event, or `None` after `timeout` (to show that nothing arrives).
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        self.next_of("event", timeout)
            .await
            .map(|mut line| line["event"].take())
    }

    /// The next event for which `matches` holds (other events are kept for later); panics if
    /// none comes in time. `what` describes it in the failure message.
    pub async fn expect_event_where(
        &mut self,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        self.expect_matching("event", what, |line| matches(&line["event"]))
            .await["event"]
            .take()
    }

    /// The next event for which `matches` holds, or `None` after `timeout` (to show that no
    /// such event arrives).
    pub async fn next_event_where(
        &mut self,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        self.next_matching("event", |line| matches(&line["event"]), timeout)
            .await
            .map(|mut line| line["event"].take())
    }

    /// The next response the seed's own code fetched from Herald (a `fetched` line:
    /// `{url, status, body}`) whose URL ends with `url_suffix`; panics if none comes in time.
    pub async fn expect_fetched(&mut self, url_suffix: &str) -> Value {
        let what = format!("a fetch of …{url_suffix}");
        self.expect_matching("fetched", &what, |line| {
            line["url"]
                .as_str()
                .is_some_and(|url| url.ends_with(url_suffix))
        })
        .await
    }

    /// The next notification the seed's handler fetched and displayed.
    pub async fn expect_notification(&mut self) -> Value {
        self.expect("notification").await["notification"].take()
    }

    /// The client's stderr (the seed's and SignalR's logging).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `tests/`, where `node_modules` and `node/client.ts` are.
fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    assert!(
        dir.join("node_modules/@microsoft/signalr").exists(),
        "tests/node_modules is missing: run `npm ci` in tests/ (scripts/test does)"
    );
    dir
}
