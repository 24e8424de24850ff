//! The fault & abuse suite (`scripts/chaos`, docs/chaos.md): every Procfile process (two of each
//! worker kind) against a fresh PostgreSQL database, a private Redis and a misbehaving SMTP sink,
//! a mixed workload with 200 README hub clients, faults at seeded-random moments, and at the
//! end one table of what was accepted against what PostgreSQL, the sink and the clients show.

mod abuse;
mod backend;
mod checks;
mod cluster;
mod faults;
mod hub_clients;
mod workload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use checks::Report;

use crate::database::TestDatabase;
use crate::redis_server::RedisServer;
use crate::smtp::SmtpServer;
use backend::{Backend, Call};

/// The suite's own PostgreSQL connections carry this name, so `pg_terminate_backend` spares
/// them.
pub const CHECKER_APPLICATION: &str = "herald-chaos";

#[derive(Clone, Debug)]
pub struct Config {
    pub form: &'static str,
    pub seed: u64,
    /// Workload without faults before the faults start; RSS is sampled at its end.
    pub warm_up: Duration,
    /// Faults (and the workload) last this long.
    pub fault_window: Duration,
    /// After the faults: how long Herald may take to finish the accepted work.
    pub quiet_max: Duration,
    pub hub_clients: usize,
    pub hostile_clients: usize,
    /// Whether rounds of every fault repeat until the window ends (else every fault once).
    pub repeat_faults: bool,
}

impl Config {
    /// CI's form: every fault once in 75 s.
    pub fn short(seed: u64) -> Self {
        Self {
            form: "short",
            seed,
            warm_up: Duration::from_secs(10),
            fault_window: Duration::from_secs(75),
            quiet_max: Duration::from_secs(90),
            hub_clients: 200,
            hostile_clients: 1000,
            repeat_faults: false,
        }
    }

    /// By hand: rounds of every fault for `minutes`.
    pub fn long(seed: u64, minutes: u64) -> Self {
        Self {
            form: "long",
            fault_window: Duration::from_secs(minutes * 60),
            quiet_max: Duration::from_secs(180),
            warm_up: Duration::from_secs(20),
            repeat_faults: true,
            ..Self::short(seed)
        }
    }
}

/// Memory is "flat" when each process kind's last RSS is within this of its post-warm-up RSS:
/// at most `RSS_FACTOR` times it plus `RSS_SLACK_KB`.
pub const RSS_FACTOR: f64 = 1.5;
pub const RSS_SLACK_KB: u64 = 32 * 1024;

pub async fn checker_pool(url: &str) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.application_name(CHECKER_APPLICATION))
        .await
}

/// Runs the suite; the report says which targets were missed.
pub async fn run(config: Config) -> Report {
    let started = Instant::now();
    let log = Arc::new(faults::FaultLog::new(started));
    log.write(format!("{} form, seed {}", config.form, config.seed));
    let database = TestDatabase::create().await;
    let pool = checker_pool(&database.url).await.expect("database");
    let redis = RedisServer::start().await;
    let scratch =
        std::env::temp_dir().join(format!("herald-chaos-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let smtp_control: PathBuf = scratch.join("smtp-mode");
    let smtp_attempts = scratch.join("smtp-attempts.jsonl");
    let smtp = SmtpServer::start_chaos(&smtp_control, &smtp_attempts);
    let tenant = create_tenant(&pool).await;

    let env = process_env(&database.url, &redis.url(), &smtp.url());
    let cluster = cluster::Cluster::start(env).await;
    log.write("every process healthy: web, hub, 2 fanout, 2 email, 2 scheduler");
    let backend = Arc::new(Backend::new(
        cluster.base_url("web"),
        tenant.0,
        tenant.1.clone(),
    ));
    let hub_url = cluster.base_url("hub");
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let redis = Arc::new(tokio::sync::Mutex::new(redis));

    let plan = Arc::new(workload::Plan {
        seed: config.seed,
        hub_users: workload::hub_users(config.hub_clients),
        broadcast_size: 10_000,
        notification_senders: 4,
        notification_interval: Duration::from_millis(400),
        broadcast_interval: Duration::from_secs(25),
        chat_interval: Duration::from_millis(500),
    });
    let ledger = Arc::new(Mutex::new(workload::Ledger::default()));
    workload::prepare(&backend, &plan, &ledger).await;
    let hub_tokens = tokens(&backend, &plan.hub_users).await;
    let hostile_users: Vec<String> = (0..100).map(|i| format!("x{i:02}")).collect();
    let hostile_tokens: Vec<String> = tokens(&backend, &hostile_users)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let mut clients = hub_clients::HubClients::start(&hub_url, tenant.0, &hub_tokens).await;
    log.write(format!(
        "{} README hub clients started ({} failed)",
        clients.started, clients.failed
    ));

    let monitor_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let monitor = tokio::spawn(monitor(cluster.clone(), log.clone(), monitor_stop.clone()));

    let faults_start = Instant::now() + config.warm_up;
    let workload_end = faults_start + config.fault_window;
    let workload = tokio::spawn(workload::run(
        backend.clone(),
        plan.clone(),
        ledger.clone(),
        workload_end,
    ));
    tokio::time::sleep_until(faults_start.into()).await;
    cluster.lock().await.sample_rss(true);
    log.write("warm-up over: RSS sampled; faults start");

    let mut rng = StdRng::seed_from_u64(config.seed);
    let schedule = faults::schedule(
        &mut rng,
        config.fault_window,
        Duration::from_secs(4),
        config.repeat_faults,
    );
    let abuse_results = Arc::new(Mutex::new(faults::AbuseResults::default()));
    let mut injector = faults::Injector {
        cluster: cluster.clone(),
        redis: redis.clone(),
        log: log.clone(),
        database: database.name.clone(),
        pg_url: database.url.clone(),
        smtp_control: smtp_control.clone(),
        tenant_id: tenant.0,
        api_key: tenant.1.clone(),
        hostile_tokens,
        hostile_clients: config.hostile_clients,
        abuse: abuse_results.clone(),
        background: Vec::new(),
    };
    for (at, fault) in schedule {
        tokio::time::sleep_until((faults_start + at).into()).await;
        injector.inject(fault, &mut rng).await;
    }
    let _ = workload.await;
    injector.finish().await;
    log.write("faults and workload over; quiet period");

    let quiet_end = Instant::now() + config.quiet_max;
    let settled = checks::wait_settled(&pool, tenant.0, quiet_end).await;
    log.write(if settled {
        "accepted work settled"
    } else {
        "quiet period ran out before the work settled"
    });
    // Events published by the last deliveries are still in flight for a moment.
    tokio::time::sleep(Duration::from_secs(5)).await;
    monitor_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = monitor.await;
    let received = clients.report().await;
    let hub_users_started = clients.started;
    clients.stop().await;

    let mut cluster = cluster.lock().await;
    cluster.sample_rss(false);
    let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
    let abuse_results = std::mem::take(&mut *abuse_results.lock().expect("abuse"));
    let inputs = checks::Inputs {
        config: &config,
        tenant_id: tenant.0,
        ledger: &ledger,
        counters: &backend.counters,
        smtp_received: smtp.received(),
        smtp_attempts: read_lines(&smtp_attempts),
        received: &received,
        hub_users_started,
        abuse: &abuse_results,
        rss: cluster.rss_by_kind(),
        died_unasked: cluster.died_unasked.clone(),
        fault_log: log.entries.lock().expect("log").clone(),
        settled,
        wall: started.elapsed(),
    };
    let report = checks::evaluate(&pool, inputs).await;
    cluster.stop();
    pool.close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    report
}

/// Samples RSS and restarts processes that died on their own, every second.
async fn monitor(
    cluster: Arc<tokio::sync::Mutex<cluster::Cluster>>,
    log: Arc<faults::FaultLog>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        {
            let mut cluster = cluster.lock().await;
            for death in cluster.reap().await {
                log.write(format!("UNEXPECTED: {death}"));
            }
            cluster.sample_rss(false);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn process_env(database_url: &str, redis_url: &str, smtp_url: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis_url),
        ("HERALD_REDIS_PREFIX", "chaos"),
        ("HERALD_JWT_SECRET", crate::TEST_JWT_SECRET),
        ("HERALD_SECRETS_KEY", crate::TEST_SECRETS_KEY),
        ("HERALD_HOST", "127.0.0.1"),
        ("HERALD_AUTO_MIGRATE", "false"),
        ("RUST_LOG", "info,sqlx=warn"),
        ("SMTP_URL", smtp_url),
        ("HERALD_DB_MAX_CONNECTIONS", "5"),
        // Tick often and sweep soon, so the quiet period can be short.
        ("HERALD_SCHEDULER_CRON", "*/2 * * * * *"),
        ("HERALD_SWEEP_AFTER_SECS", "8"),
        ("HERALD_EMAIL_BACKOFF_BASE_MS", "250"),
        ("HERALD_EMAIL_MAX_ATTEMPTS", "8"),
        // A killed worker's claims that never reached DATA are sent again after 30 s, inside
        // the quiet period (still past the 20 s a live send may take to reach DATA).
        ("HERALD_EMAIL_LEASE_SECS", "30"),
        // Several chunks per broadcast: more seams for a kill to land in.
        ("HERALD_FANOUT_CHUNK_SIZE", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn create_tenant(pool: &PgPool) -> (uuid::Uuid, String) {
    let key = herald_shared::auth::api_key::generate();
    let mut tx = pool.begin().await.expect("tx");
    let tenant = herald_shared::db::tenants::insert(&mut tx, "chaos")
        .await
        .expect("tenant");
    herald_shared::db::api_keys::insert(&mut tx, tenant.id, &key)
        .await
        .expect("key");
    tx.commit().await.expect("commit");
    (tenant.id, key.plaintext)
}

/// A token per user from token exchange (before any fault).
async fn tokens(backend: &Backend, users: &[String]) -> Vec<(String, String)> {
    futures::stream::iter(users.iter().cloned())
        .map(|user| async move {
            let body = json!({ "userId": user });
            let (status, answer) = backend
                .send(Call::post("Auth/token-exchange", &body))
                .await
                .expect("token exchange before any fault");
            assert_eq!(status, 200, "token exchange: {answer}");
            (user, answer["token"].as_str().expect("token").to_owned())
        })
        .buffered(8)
        .collect()
        .await
}

fn read_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
