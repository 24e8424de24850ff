//! End-to-end latency from `POST /Notifications` to the event on a hub client, at a steady
//! 200 requests per second, next to the Redis pub/sub round trip measured in the same run.
//!
//! Every process is real: `herald-api` (REST and hub on one port, as the seed clients use it),
//! `herald-fanout`, PostgreSQL, Redis; the client speaks the SignalR JSON protocol over a
//! WebSocket (the raw test client, so its own overhead stays small).
//!
//! Run with `scripts/bench latency` (release build).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use herald_benches::{ms, summarize};
use herald_tests::database::TestDatabase;
use herald_tests::hub::hub_ws_url;
use herald_tests::process::{HeraldProcess, free_port};
use herald_tests::raw_hub::RawHubClient;
use herald_tests::{TEST_JWT_SECRET, redis_url};
use serde_json::{Value, json};

const RATE_PER_SECOND: u64 = 200;
const REQUESTS: usize = 2_000;
const PUBSUB_SAMPLES: usize = 1_000;

type Clock = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = TestDatabase::create().await;
    let pool = db.pool().await;
    let key = herald_shared::auth::api_key::generate();
    let mut tx = pool.begin().await?;
    let tenant = herald_shared::db::tenants::insert(&mut tx, "bench").await?;
    herald_shared::db::api_keys::insert(&mut tx, tenant.id, &key).await?;
    tx.commit().await?;
    let prefix = format!("lat{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.url.as_str()),
        ("REDIS_URL", &redis_url()),
        ("HERALD_REDIS_PREFIX", &prefix),
        ("HERALD_JWT_SECRET", TEST_JWT_SECRET),
        ("HERALD_HOST", "127.0.0.1"),
        ("HERALD_AUTO_MIGRATE", "false"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut api = HeraldProcess::start("herald-api", free_port(), &env);
    api.wait_healthy().await;
    let mut fanout = HeraldProcess::start("herald-fanout", free_port(), &env);
    fanout.wait_healthy().await;
    let base = api.base_url();
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!(
            "{base}/tenant/{}/v1/Auth/token-exchange",
            tenant.id
        ))
        .header("X-API-Key", &key.plaintext)
        .json(&json!({ "userId": "latency-user" }))
        .send()
        .await?
        .json()
        .await?;
    let token = token["token"].as_str().unwrap_or_default().to_owned();
    let mut hub = RawHubClient::connect(
        &hub_ws_url(&base, tenant.id, "clientId=bench"),
        Some(&token),
    )
    .await
    .map_err(|_| anyhow::anyhow!("hub connection refused"))?;
    anyhow::ensure!(hub.handshake().await == json!({}), "handshake failed");

    // Arrival times, recorded by a reader that does nothing else.
    let arrivals: Clock = Arc::default();
    let recorded = arrivals.clone();
    let reader = tokio::spawn(async move {
        while let Some(message) = hub.next_message(Duration::from_secs(30)).await {
            if message["target"] == "MessagingEvent"
                && let Some(id) = message["arguments"][0]["id"].as_str()
            {
                recorded
                    .lock()
                    .expect("clock")
                    .insert(id.to_owned(), Instant::now());
            }
        }
    });

    // Requests at a steady rate; each remembers when it was sent.
    let sent: Clock = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SECOND));
    let url = format!("{base}/tenant/{}/v1/Notifications", tenant.id);
    let mut requests = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        tick.tick().await;
        let (client, url, api_key, sent) = (
            client.clone(),
            url.clone(),
            key.plaintext.clone(),
            sent.clone(),
        );
        requests.push(tokio::spawn(async move {
            let begun = Instant::now();
            let created: Value = client
                .post(&url)
                .header("X-API-Key", api_key)
                .json(&json!({ "userId": "latency-user", "subject": format!("n{i}"), "message": "m", "type": "SystemAnnouncement" }))
                .send()
                .await?
                .json()
                .await?;
            let id = created["id"].as_str().unwrap_or_default().to_owned();
            sent.lock().expect("clock").insert(id, begun);
            anyhow::Ok(())
        }));
    }
    for request in requests {
        request.await??;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    reader.abort();
    let sent = sent.lock().expect("clock").clone();
    let arrivals = arrivals.lock().expect("clock").clone();
    let latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, begun)| {
            arrivals
                .get(id)
                .map(|arrived| arrived.saturating_duration_since(*begun))
        })
        .collect();
    let missing = REQUESTS - latencies.len();
    let herald = summarize(latencies, Duration::from_secs(1));
    let pubsub = pubsub_round_trips().await?;
    drop((api, fanout));

    println!();
    println!(
        "POST /Notifications → SignalR client event, {REQUESTS} requests at {RATE_PER_SECOND}/s (herald-api + herald-fanout)"
    );
    println!(
        "  herald end to end        p50 {}   p99 {}   ({} events missing)",
        ms(herald.p50),
        ms(herald.p99),
        missing
    );
    println!(
        "  limit: Redis pub/sub RTT p50 {}   p99 {}",
        ms(pubsub.p50),
        ms(pubsub.p99)
    );
    println!("  (targets: p50 ≤ 5 ms, p99 ≤ 20 ms)");
    Ok(())
}

/// PUBLISH → subscriber receives, one message at a time.
async fn pubsub_round_trips() -> anyhow::Result<herald_benches::Summary> {
    let client = redis::Client::open(redis_url())?;
    let mut subscriber = client.get_async_pubsub().await?;
    subscriber.subscribe("herald-bench:rtt").await?;
    let mut messages = subscriber.on_message();
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut samples = Vec::with_capacity(PUBSUB_SAMPLES);
    for _ in 0..PUBSUB_SAMPLES {
        let begun = Instant::now();
        let _: i64 = redis::cmd("PUBLISH")
            .arg("herald-bench:rtt")
            .arg("x")
            .query_async(&mut publisher)
            .await?;
        messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("pub/sub closed"))?;
        samples.push(begun.elapsed());
    }
    Ok(summarize(samples, Duration::from_secs(1)))
}
