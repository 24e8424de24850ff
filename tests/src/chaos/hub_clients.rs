//! The 200 README clients: one Node process (tests/node/chaos-clients.ts) holding a connection
//! per hub user, built with the README's reconnect code, reporting every event id it received.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use uuid::Uuid;

use crate::process::log_dir;

/// What one user's connection received.
#[derive(Debug, Default)]
pub struct Received {
    pub ids: HashSet<String>,
    pub events: u64,
    pub reconnecting: u64,
    pub reconnected: u64,
    pub closed: u64,
}

pub struct HubClients {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pub started: u64,
    pub failed: u64,
}

impl HubClients {
    /// Connects every `(user id, token)` to the hub at `base_url`; returns once every
    /// `connection.start()` settled.
    pub async fn start(base_url: &str, tenant_id: Uuid, users: &[(String, String)]) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let clients_file = std::env::temp_dir().join(format!(
            "herald-chaos-clients-{}.json",
            Uuid::new_v4().simple()
        ));
        let list: Vec<Value> = users
            .iter()
            .map(|(user, token)| serde_json::json!({ "userId": user, "token": token }))
            .collect();
        std::fs::write(&clients_file, serde_json::to_vec(&list).expect("json"))
            .expect("clients file");
        let log = std::fs::File::create(log_dir().join("chaos-hub-clients.log")).expect("log");
        let mut child = Command::new("node")
            .args(["--import", "tsx", "node/chaos-clients.ts"])
            .current_dir(&dir)
            .env("HERALD_URL", base_url)
            .env("HERALD_TENANT_ID", tenant_id.to_string())
            .env("HERALD_CLIENTS", &clients_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("node (20+) must be installed; scripts/chaos runs npm ci in tests/");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(120), next_json(&mut lines))
            .await
            .ok()
            .flatten()
            .expect("the hub clients did not report ready (see chaos-hub-clients.log)");
        Self {
            child,
            stdin,
            lines,
            started: ready["started"].as_u64().unwrap_or(0),
            failed: ready["failed"].as_u64().unwrap_or(0),
        }
    }

    /// What each user's connection received so far.
    pub async fn report(&mut self) -> BTreeMap<String, Received> {
        let mut by_user = BTreeMap::new();
        if self.stdin.write_all(b"report\n").await.is_err() {
            return by_user;
        }
        let _ = self.stdin.flush().await;
        let collect = async {
            while let Some(line) = next_json(&mut self.lines).await {
                if line["kind"] == "reported" {
                    break;
                }
                let count = |field: &str| line[field].as_u64().unwrap_or(0);
                let received = Received {
                    ids: line["ids"]
                        .as_array()
                        .map(|ids| {
                            ids.iter()
                                .filter_map(|id| id.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    events: count("events"),
                    reconnecting: count("reconnecting"),
                    reconnected: count("reconnected"),
                    closed: count("closed"),
                };
                by_user.insert(
                    line["userId"].as_str().unwrap_or_default().to_owned(),
                    received,
                );
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), collect).await;
        by_user
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Option<Value> {
    loop {
        let line = lines.next_line().await.ok()??;
        if let Ok(value) = serde_json::from_str(&line) {
            return Some(value);
        }
    }
}
