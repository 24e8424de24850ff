//! The faults, injected at seeded-random moments; each is written to the fault log with its
//! time since the start of the run.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::abuse;
use super::cluster::{Cluster, RESTART_DELAY};
use crate::redis_server::RedisServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Kill(&'static str),
    FlushAll,
    RedisRestart,
    PubSubClientKill,
    PgTerminate,
    Smtp(&'static str),
    HostileHubClients,
    Slowloris,
    H2cOversized,
}

/// Every fault once.
pub const ALL: [Fault; 15] = [
    Fault::Kill("web"),
    Fault::Kill("hub"),
    Fault::Kill("fanout"),
    Fault::Kill("email"),
    Fault::Kill("scheduler"),
    Fault::FlushAll,
    Fault::RedisRestart,
    Fault::PubSubClientKill,
    Fault::PgTerminate,
    Fault::Smtp("4xx"),
    Fault::Smtp("5xx"),
    Fault::Smtp("stall"),
    Fault::HostileHubClients,
    Fault::Slowloris,
    Fault::H2cOversized,
];

/// Fault times (offsets into the fault window of `window`): every fault at least once, in a
/// seeded order at seeded moments; rounds repeat while the window lasts (the long form).
pub fn schedule(
    rng: &mut StdRng,
    window: Duration,
    min_gap: Duration,
    repeat: bool,
) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    let mut at = Duration::from_secs(2);
    let mut first_round = true;
    while first_round || (repeat && at < window) {
        let mut round = ALL.to_vec();
        round.shuffle(rng);
        // Slowloris measures whether web closes idle half-sent requests; a kill of web while
        // they are held would close them too, so within a round web is killed first.
        let kill_web = round.iter().position(|f| *f == Fault::Kill("web"));
        let slowloris = round.iter().position(|f| *f == Fault::Slowloris);
        if let (Some(kill), Some(slow)) = (kill_web, slowloris)
            && slow < kill
        {
            round.swap(slow, kill);
        }
        // Once: spread over the window. Repeated: a round every ~15 gaps of 3 × min_gap.
        let gap = if repeat {
            min_gap * 3
        } else {
            window.saturating_sub(at) / ALL.len() as u32
        };
        for fault in round {
            plan.push((at, fault));
            let jitter = rng.random_range(0.5..1.5);
            at += gap.max(min_gap).mul_f64(jitter);
        }
        first_round = false;
    }
    plan.retain(|(at, _)| *at < window + Duration::from_secs(2));
    plan
}

pub struct FaultLog {
    start: Instant,
    pub entries: Mutex<Vec<(f64, String)>>,
}

impl FaultLog {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            entries: Mutex::new(Vec::new()),
        }
    }

    pub fn write(&self, line: impl Into<String>) {
        let line = line.into();
        let at = self.start.elapsed().as_secs_f64();
        eprintln!("[chaos {at:7.1}s] {line}");
        self.entries.lock().expect("log").push((at, line));
    }
}

/// Observations of the abuse faults, for the checks.
#[derive(Default)]
pub struct AbuseResults {
    /// (opened, closed by the server while held)
    pub slowloris: Vec<(usize, usize)>,
    pub h2c_statuses: Vec<Option<u16>>,
}

pub struct Injector {
    pub cluster: Arc<tokio::sync::Mutex<Cluster>>,
    pub redis: Arc<tokio::sync::Mutex<RedisServer>>,
    pub log: Arc<FaultLog>,
    pub database: String,
    pub pg_url: String,
    pub smtp_control: PathBuf,
    pub tenant_id: Uuid,
    pub api_key: String,
    pub hostile_tokens: Vec<String>,
    pub hostile_clients: usize,
    pub abuse: Arc<Mutex<AbuseResults>>,
    pub background: Vec<JoinHandle<()>>,
}

impl Injector {
    pub async fn inject(&mut self, fault: Fault, rng: &mut StdRng) {
        match fault {
            Fault::Kill(kind) => {
                let copies = if matches!(kind, "web" | "hub") { 1 } else { 2 };
                let copy = rng.random_range(0..copies);
                let pid = self.cluster.lock().await.kill(kind, copy);
                self.log
                    .write(format!("kill -9 {kind}#{copy} (pid {pid:?})"));
                tokio::time::sleep(RESTART_DELAY).await;
                self.cluster.lock().await.restart_missing().await;
                self.log.write(format!("{kind}#{copy} restarted"));
            }
            Fault::FlushAll => {
                self.redis.lock().await.flush_all().await;
                self.log.write("Redis FLUSHALL");
            }
            Fault::RedisRestart => {
                let mut redis = self.redis.lock().await;
                let port = redis.port;
                redis.stop();
                self.log.write("Redis stopped (restart, nothing persisted)");
                tokio::time::sleep(Duration::from_secs(2)).await;
                *redis = RedisServer::start_on(port).await;
                self.log.write("Redis started again");
            }
            Fault::PubSubClientKill => {
                let url = self.redis.lock().await.url();
                let killed = redis_command(&url, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
                self.log
                    .write(format!("Redis CLIENT KILL TYPE pubsub: {killed}"));
            }
            Fault::PgTerminate => {
                let terminated = self.pg_terminate().await;
                self.log.write(format!(
                    "pg_terminate_backend of Herald's connections: {terminated}"
                ));
            }
            Fault::Smtp(mode) => {
                let window = if mode == "5xx" { 3 } else { 6 };
                let _ = std::fs::write(&self.smtp_control, mode);
                self.log.write(format!(
                    "SMTP answers every delivery with {mode} for {window} s"
                ));
                let control = self.smtp_control.clone();
                let log = self.log.clone();
                self.background.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(window)).await;
                    let _ = std::fs::write(&control, "");
                    log.write(format!("SMTP {mode} window over"));
                }));
            }
            Fault::HostileHubClients => {
                let port = self.cluster.lock().await.port("hub");
                let (tenant, tokens, count) = (
                    self.tenant_id,
                    self.hostile_tokens.clone(),
                    self.hostile_clients,
                );
                let log = self.log.clone();
                log.write(format!("{count} hostile hub clients connecting"));
                self.background.push(tokio::spawn(async move {
                    let summary = abuse::hostile_hub_clients(
                        port,
                        tenant,
                        tokens,
                        count,
                        Duration::from_secs(20),
                    )
                    .await;
                    log.write(format!("{summary}; gone"));
                }));
            }
            Fault::Slowloris => {
                let port = self.cluster.lock().await.port("web");
                let path = format!("/tenant/{}/v1/Notifications", self.tenant_id);
                let (log, abuse, cluster) =
                    (self.log.clone(), self.abuse.clone(), self.cluster.clone());
                log.write("100 slowloris HTTP connections to web, held 40 s");
                self.background.push(tokio::spawn(async move {
                    let starts_before = cluster.lock().await.starts("web");
                    let (opened, closed) =
                        abuse::slowloris(port, path, 100, Duration::from_secs(40)).await;
                    if cluster.lock().await.starts("web") != starts_before {
                        log.write("slowloris: inconclusive (web restarted while they were held)");
                        return;
                    }
                    log.write(format!(
                        "slowloris: {opened} opened, {closed} closed by the server within 40 s"
                    ));
                    abuse
                        .lock()
                        .expect("abuse")
                        .slowloris
                        .push((opened, closed));
                }));
            }
            Fault::H2cOversized => {
                let url = format!(
                    "{}/tenant/{}/v1/Notifications",
                    self.cluster.lock().await.base_url("web"),
                    self.tenant_id
                );
                let (log, abuse, key) =
                    (self.log.clone(), self.abuse.clone(), self.api_key.clone());
                log.write("3 h2c requests with 64 MiB bodies to web");
                self.background.push(tokio::spawn(async move {
                    let statuses = abuse::h2c_oversized(url, key, 3, 64 << 20).await;
                    log.write(format!("h2c oversized bodies answered {statuses:?}"));
                    abuse.lock().expect("abuse").h2c_statuses.extend(statuses);
                }));
            }
        }
    }

    async fn pg_terminate(&self) -> String {
        let Ok(pool) = super::checker_pool(&self.pg_url).await else {
            return "cannot connect".to_owned();
        };
        let result: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> $2",
        )
        .bind(&self.database)
        .bind(super::CHECKER_APPLICATION)
        .fetch_one(&pool)
        .await;
        pool.close().await;
        match result {
            Ok(n) => format!("{n} connections terminated"),
            Err(error) => format!("failed: {error}"),
        }
    }

    /// Waits for the faults still running in the background (SMTP windows, hostile clients).
    pub async fn finish(&mut self) {
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        let _ = std::fs::write(&self.smtp_control, "");
    }
}

async fn redis_command(url: &str, args: &[&str]) -> String {
    let Ok(client) = redis::Client::open(url) else {
        return "bad url".to_owned();
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return "cannot connect".to_owned();
    };
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query_async::<i64>(&mut conn).await {
        Ok(n) => format!("{n} clients killed"),
        Err(error) => format!("failed: {error}"),
    }
}
