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

use herald_benches::{Stack, ms, pubsub_round_trips, summarize};
use herald_tests::hub::hub_ws_url;
use herald_tests::raw_hub::RawHubClient;
use serde_json::{Value, json};

const RATE_PER_SECOND: u64 = 200;
const REQUESTS: usize = 2_000;
const PUBSUB_SAMPLES: usize = 1_000;

type Clock = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::create().await?;
    let api = stack.start("herald-api").await;
    let fanout = stack.start("herald-fanout").await;
    let base = api.base_url();
    let client = reqwest::Client::new();
    let token = stack.token(&client, &base, "latency-user").await?;
    let tenant_id = stack.tenant_id;
    let mut hub = RawHubClient::connect(
        &hub_ws_url(&base, tenant_id, "clientId=bench"),
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
    let url = format!("{base}/tenant/{tenant_id}/v1/Notifications");
    let mut requests = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        tick.tick().await;
        let (client, url, api_key, sent) = (
            client.clone(),
            url.clone(),
            stack.api_key.clone(),
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
    let pubsub = pubsub_round_trips(PUBSUB_SAMPLES).await?;
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
