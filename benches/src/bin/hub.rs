//! One `herald-hub` node with 15,000 idle connections, one per user: its memory per connection,
//! and the time to deliver one event to every user — next to Redis pub/sub alone doing the
//! same fan-out in the same run (the physical limit), and the figures of a plain Node `ws`
//! server on this machine.
//!
//! Run with `scripts/bench hub` (release build). The clients here are plain tokio WebSockets
//! that negotiate, handshake and ping as the SignalR clients do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, TryStreamExt};
use herald_benches::{ms, summarize};
use herald_shared::auth::JwtKeys;
use herald_shared::config::{Env, Environment, JwtConfig};
use herald_shared::domain::UserId;
use herald_shared::events::{EventType, MessagingEvent, user_channel};
use herald_tests::database::TestDatabase;
use herald_tests::process::HeraldProcess;
use herald_tests::{TEST_JWT_SECRET, redis_url};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};
use uuid::Uuid;

const CONNECTIONS: usize = 15_000;
/// Connections being opened at once.
const CONNECT_CONCURRENCY: usize = 100;
const DELIVERY_ROUNDS: usize = 7;
const RS: char = '\u{1e}';
/// A plain Node `ws` server holding the same sockets on this machine.
const NODE_WS_KB_PER_CONNECTION: f64 = 5.9;
const NODE_WS_FANOUT_MS: f64 = 452.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = TestDatabase::create().await;
    let pool = db.pool().await;
    let mut tx = pool.begin().await?;
    let tenant = herald_shared::db::tenants::insert(&mut tx, "bench").await?;
    // Tokens name the API key that minted them, as token exchange's do.
    let key = herald_shared::auth::api_key::generate();
    let key = herald_shared::db::api_keys::insert(&mut tx, tenant.id, &key).await?;
    tx.commit().await?;
    let prefix = format!("bench{}", &Uuid::new_v4().simple().to_string()[..8]);

    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.url.as_str()),
        ("REDIS_URL", &redis_url()),
        ("HERALD_REDIS_PREFIX", &prefix),
        ("HERALD_JWT_SECRET", TEST_JWT_SECRET),
        ("HERALD_HOST", "127.0.0.1"),
        ("HERALD_AUTO_MIGRATE", "false"),
        ("HERALD_DB_MAX_CONNECTIONS", "4"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut node = HeraldProcess::start("herald-hub", &env).await;
    node.wait_healthy().await;
    let hub_url = format!("{}/tenant/{}/v1/hub", node.base_url(), tenant.id);

    let keys = jwt_keys()?;
    let users: Vec<String> = (0..CONNECTIONS).map(|i| format!("user-{i}")).collect();
    let tokens: Vec<String> = users
        .iter()
        .map(|user| {
            keys.issue(tenant.id, &UserId::parse(user.as_str())?, 3_600, key.id)
                .map_err(Into::into)
        })
        .collect::<anyhow::Result<_>>()?;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib(node.pid())?;
    let receipts = Arc::new(Receipts::new(CONNECTIONS));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECT_CONCURRENCY)
        .build()?;
    let connecting = Instant::now();
    let sockets: Vec<WebSocketStream<TcpStream>> = futures::stream::iter(tokens)
        .map(|token| connect(&http, &hub_url, token))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    let connect_time = connecting.elapsed();
    // Idle keep-alive HTTP connections from negotiate would count against the node.
    drop(http);
    for (index, socket) in sockets.into_iter().enumerate() {
        tokio::spawn(hold(socket, receipts.clone(), index));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_kib(node.pid())?;
    let per_connection_bytes =
        rss_after.saturating_sub(rss_before) as f64 * 1024.0 / CONNECTIONS as f64;

    let mut redis = redis::Client::open(redis_url())?
        .get_multiplexed_async_connection()
        .await?;
    let channels: Vec<String> = users
        .iter()
        .map(|user| user_channel(&prefix, tenant.id, user))
        .collect();
    let mut rounds = Vec::new();
    let cpu_before = cpu_time(node.pid())?;
    for _ in 0..DELIVERY_ROUNDS {
        let payload =
            MessagingEvent::notification(EventType::Message, Uuid::now_v7(), chrono::Utc::now())
                .to_json();
        let mut pipe = redis::pipe();
        for channel in &channels {
            pipe.publish(channel, &payload).ignore();
        }
        receipts.reset();
        let started = Instant::now();
        pipe.query_async::<()>(&mut redis).await?;
        tokio::time::timeout(Duration::from_secs(30), receipts.all_received.notified())
            .await
            .map_err(|_| anyhow::anyhow!("not every client received the event"))?;
        let latencies = receipts.latencies_since(started);
        let all = latencies.iter().max().copied().unwrap_or_default();
        rounds.push((all, summarize(latencies, all)));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // CPU the node spent per round (idle connections cost next to nothing meanwhile): unlike
    // wall time, it does not depend on what else the machine is running.
    let cpu_per_round = (cpu_time(node.pid())? - cpu_before) / DELIVERY_ROUNDS as u32;

    let round_trip = redis_round_trip().await?;
    let redis_fanout = redis_fanout(&prefix).await?;

    println!();
    println!("hub: {CONNECTIONS} idle connections (one user each) on one herald-hub node");
    println!(
        "  connected in {:.1} s ({:.0} connections/s, negotiate + upgrade + handshake)",
        connect_time.as_secs_f64(),
        CONNECTIONS as f64 / connect_time.as_secs_f64()
    );
    println!(
        "  node RSS {:.1} MB before, {:.1} MB after",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    println!(
        "  RSS per idle connection   {:.0} bytes = {:.2} KB   (target ≤ 4 KB; plain Node ws server {NODE_WS_KB_PER_CONNECTION} KB)",
        per_connection_bytes,
        per_connection_bytes / 1000.0
    );
    println!(
        "one event to each of the {CONNECTIONS} users (pipelined PUBLISH, until every client has it)"
    );
    for (i, (all, summary)) in rounds.iter().enumerate() {
        println!(
            "  round {}: all delivered in {}   (p50 {}, p99 {})",
            i + 1,
            ms(*all),
            ms(summary.p50),
            ms(summary.p99)
        );
    }
    let mut totals: Vec<Duration> = rounds.iter().map(|(all, _)| *all).collect();
    totals.sort_unstable();
    println!(
        "  median of {DELIVERY_ROUNDS} rounds        {}   (target ≤ 250 ms; plain Node ws server {NODE_WS_FANOUT_MS} ms)",
        ms(totals[totals.len() / 2])
    );
    println!(
        "  node CPU per round          {}   (user + system, both cores; includes the kernel's loopback delivery to the clients)",
        ms(cpu_per_round)
    );
    println!("Redis pub/sub alone, same run (the physical limit)");
    println!("  round trip (publish → subscriber) p50 {}", ms(round_trip));
    println!(
        "  {CONNECTIONS} pipelined publishes to {CONNECTIONS} channels, all received by one subscriber: {}",
        ms(redis_fanout)
    );
    drop(node);
    Ok(())
}

fn jwt_keys() -> anyhow::Result<JwtKeys> {
    let mut env =
        Env::from_map([("HERALD_JWT_SECRET".to_owned(), TEST_JWT_SECRET.to_owned())].into());
    let config = JwtConfig::read(&mut env, Environment::Production);
    let config = env.finish(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(JwtKeys::new(&config)?)
}

/// Negotiates, upgrades and handshakes one connection, as `@microsoft/signalr` does.
async fn connect(
    http: &reqwest::Client,
    hub_url: &str,
    token: String,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let negotiated: serde_json::Value = http
        .post(format!("{hub_url}/negotiate?negotiateVersion=1"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = negotiated["connectionToken"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no connection token: {negotiated}"))?;
    let ws_url = format!("{}?id={id}", hub_url.replacen("http://", "ws://", 1));
    let mut request = ws_url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let host = hub_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let stream = TcpStream::connect(host).await?;
    // A client of its own needs no 128 KiB read buffer per socket either.
    let config = WebSocketConfig::default().read_buffer_size(512);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    ws.send(Message::text(format!(
        "{{\"protocol\":\"json\",\"version\":1}}{RS}"
    )))
    .await?;
    match ws.next().await {
        Some(Ok(Message::Text(text))) if text.as_str() == format!("{{}}{RS}") => Ok(ws),
        other => anyhow::bail!("unexpected handshake answer: {other:?}"),
    }
}

/// When each client received the event of the current round.
struct Receipts {
    epoch: Instant,
    received: AtomicUsize,
    /// Nanoseconds since `epoch`, per client.
    at: Vec<AtomicU64>,
    all_received: Notify,
}

impl Receipts {
    fn new(clients: usize) -> Self {
        Self {
            epoch: Instant::now(),
            received: AtomicUsize::new(0),
            at: (0..clients).map(|_| AtomicU64::new(0)).collect(),
            all_received: Notify::new(),
        }
    }

    fn reset(&self) {
        self.received.store(0, Ordering::SeqCst);
    }

    /// Atomics rather than a channel: the measuring side must not add 15,000 wake-ups of its
    /// own to what is measured.
    fn record(&self, client: usize) {
        let nanos = self.epoch.elapsed().as_nanos() as u64;
        self.at[client].store(nanos, Ordering::SeqCst);
        if self.received.fetch_add(1, Ordering::SeqCst) + 1 == self.at.len() {
            self.all_received.notify_one();
        }
    }

    fn latencies_since(&self, started: Instant) -> Vec<Duration> {
        let offset = started.duration_since(self.epoch);
        self.at
            .iter()
            .map(|at| Duration::from_nanos(at.load(Ordering::SeqCst)).saturating_sub(offset))
            .collect()
    }
}

/// Keeps a connection alive like a SignalR client (a ping every 15 s) and records when each
/// event arrives.
async fn hold(mut ws: WebSocketStream<TcpStream>, receipts: Arc<Receipts>, client: usize) {
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(15),
        Duration::from_secs(15),
    );
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if text.contains("\"target\":\"MessagingEvent\"") {
                        receipts.record(client);
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = ping.tick() => {
                if ws.send(Message::text(format!("{{\"type\":6}}{RS}"))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// CPU time used so far by every thread of a process (`/proc/<pid>/task/*/schedstat`).
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let schedstat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        total += schedstat
            .split_whitespace()
            .next()
            .and_then(|nanos| nanos.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(Duration::from_nanos(total))
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// Median time from PUBLISH to the subscriber receiving it.
async fn redis_round_trip() -> anyhow::Result<Duration> {
    let client = redis::Client::open(redis_url())?;
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut subscriber = client.get_async_pubsub().await?;
    let channel = format!("bench-rtt-{}", Uuid::new_v4().simple());
    subscriber.subscribe(&channel).await?;
    let mut messages = subscriber.on_message();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg("x")
            .query_async::<()>(&mut publisher)
            .await?;
        messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("subscriber closed"))?;
        samples.push(started.elapsed());
    }
    Ok(summarize(samples, Duration::from_secs(1)).p50)
}

/// The same fan-out as the hub's, with Redis alone: one subscriber on as many channels.
async fn redis_fanout(prefix: &str) -> anyhow::Result<Duration> {
    let client = redis::Client::open(redis_url())?;
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let (mut sink, mut stream) = client.get_async_pubsub().await?.split();
    let channels: Arc<Vec<String>> = Arc::new(
        (0..CONNECTIONS)
            .map(|i| format!("{prefix}:limit:{i}"))
            .collect(),
    );
    for chunk in channels.chunks(1_000) {
        sink.subscribe(chunk).await?;
    }
    let payload =
        MessagingEvent::notification(EventType::Message, Uuid::now_v7(), chrono::Utc::now())
            .to_json();
    let mut pipe = redis::pipe();
    for channel in channels.iter() {
        pipe.publish(channel, &payload).ignore();
    }
    let started = Instant::now();
    pipe.query_async::<()>(&mut publisher).await?;
    for _ in 0..CONNECTIONS {
        stream
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("subscriber closed"))?;
    }
    Ok(started.elapsed())
}
