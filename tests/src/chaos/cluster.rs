//! Every Procfile process of one installation, supervised as a process manager would: each
//! slot keeps its port, a killed process is started again, and each process's resident memory
//! is sampled.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::process::HeraldProcess;

/// A Procfile process kind and how many copies the suite runs of it.
pub const KINDS: [(&str, &str, usize); 5] = [
    ("web", "herald-api", 1),
    ("hub", "herald-hub", 1),
    ("fanout", "herald-fanout", 2),
    ("email", "herald-email", 2),
    ("scheduler", "herald-scheduler", 2),
];

struct Slot {
    kind: &'static str,
    binary: &'static str,
    port: u16,
    process: Option<HeraldProcess>,
    rss_kb: RssKb,
    starts: u32,
}

/// Resident-memory samples of one slot, across its restarts.
#[derive(Clone, Copy, Debug, Default)]
pub struct RssKb {
    pub peak: u64,
    pub warm: u64,
    pub last: u64,
}

pub struct Cluster {
    env: Vec<(String, String)>,
    slots: Vec<Slot>,
    /// Processes found dead without the suite having killed them, per kind.
    pub died_unasked: BTreeMap<&'static str, u32>,
}

impl Cluster {
    /// Starts every slot with `env` and waits until each answers `/healthz`.
    pub async fn start(env: Vec<(String, String)>) -> Self {
        let mut slots = Vec::new();
        for (kind, binary, copies) in KINDS {
            for _ in 0..copies {
                slots.push(Slot {
                    kind,
                    binary,
                    port: 0,
                    process: None,
                    rss_kb: RssKb::default(),
                    starts: 0,
                });
            }
        }
        let mut cluster = Self {
            env,
            slots,
            died_unasked: BTreeMap::new(),
        };
        for index in 0..cluster.slots.len() {
            cluster.launch(index).await;
        }
        cluster
    }

    async fn launch(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        // The first start takes the port the kernel gives; a restart keeps it.
        let mut process = HeraldProcess::start_on(slot.binary, slot.port, &self.env).await;
        process.wait_healthy().await;
        slot.port = process.port;
        slot.process = Some(process);
        slot.starts += 1;
    }

    /// How many times the slots of `kind` were started (restarts included).
    pub fn starts(&self, kind: &str) -> u32 {
        self.slots
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.starts)
            .sum()
    }

    pub fn base_url(&self, kind: &str) -> String {
        let slot = self.slots.iter().find(|s| s.kind == kind).expect("kind");
        format!("http://127.0.0.1:{}", slot.port)
    }

    pub fn port(&self, kind: &str) -> u16 {
        self.slots
            .iter()
            .find(|s| s.kind == kind)
            .expect("kind")
            .port
    }

    /// `kill -9` of copy `copy` of `kind`; returns its pid.
    pub fn kill(&mut self, kind: &str, copy: usize) -> Option<u32> {
        let slot = self.slots.iter_mut().filter(|s| s.kind == kind).nth(copy)?;
        let mut process = slot.process.take()?;
        let pid = process.pid();
        process.kill();
        Some(pid)
    }

    /// Starts every slot that has no process, as a process manager restarts what died.
    pub async fn restart_missing(&mut self) {
        for index in 0..self.slots.len() {
            if self.slots[index].process.is_none() {
                self.launch(index).await;
            }
        }
    }

    /// Finds processes that exited on their own, counts them and starts them again.
    pub async fn reap(&mut self) -> Vec<String> {
        let mut found = Vec::new();
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let exited = slot
                .process
                .as_mut()
                .is_some_and(|process| process.has_exited());
            if exited {
                let process = slot.process.take().expect("process");
                found.push(format!(
                    "{} (pid {}) exited on its own; last log lines:\n{}",
                    slot.kind,
                    process.pid(),
                    last_lines(&process.logs(), 3)
                ));
                *self.died_unasked.entry(slot.kind).or_default() += 1;
                self.launch(index).await;
            }
        }
        found
    }

    /// Samples each live process's RSS; `warm` also records it as the post-warm-up figure.
    pub fn sample_rss(&mut self, warm: bool) {
        for slot in &mut self.slots {
            let Some(process) = &slot.process else {
                continue;
            };
            let Some(kb) = rss_kb(process.pid()) else {
                continue;
            };
            slot.rss_kb.last = kb;
            slot.rss_kb.peak = slot.rss_kb.peak.max(kb);
            if warm {
                slot.rss_kb.warm = kb;
            }
        }
    }

    /// Per kind: the largest peak, post-warm-up and last sample over its copies.
    pub fn rss_by_kind(&self) -> BTreeMap<&'static str, RssKb> {
        let mut by_kind: BTreeMap<&'static str, RssKb> = BTreeMap::new();
        for slot in &self.slots {
            let entry = by_kind.entry(slot.kind).or_default();
            entry.peak = entry.peak.max(slot.rss_kb.peak);
            entry.warm = entry.warm.max(slot.rss_kb.warm);
            entry.last = entry.last.max(slot.rss_kb.last);
        }
        by_kind
    }

    /// Stops everything (SIGKILL: the suite's verdict is already taken).
    pub fn stop(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut process) = slot.process.take() {
                process.kill();
            }
        }
    }
}

/// Waits between a kill and the restart, as a process manager's restart delay.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The last `n` lines of a log, without terminal colour codes.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| format!("      {}", strip_ansi(line)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
