//! Chat send → event latency in a 100-member group: from `POST /Chat/{id}/messages` to the
//! `ChatMessage` event on every member's hub connection, at a steady rate, next to the Redis
//! pub/sub round trip measured in the same run.
//!
//! Every process is real: `herald-api` (REST and hub on one port), PostgreSQL, Redis; the 100
//! clients speak the SignalR JSON protocol over WebSockets (the raw test client, so their own
//! overhead stays small). Chat messages are published by the API itself, no worker in between.
//!
//! Run with `scripts/bench chat` (release build).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_benches::{Stack, ms, pubsub_round_trips, summarize};
use herald_tests::hub::hub_ws_url;
use herald_tests::raw_hub::RawHubClient;
use serde_json::{Value, json};

const MEMBERS: usize = 100;
const RATE_PER_SECOND: u64 = 20;
const MESSAGES: usize = 400;
const PUBSUB_SAMPLES: usize = 1_000;

/// Arrival times per message id, one entry per member that received it.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::create().await?;
    let api = stack.start("herald-api").await;
    let base = api.base_url();
    let tenant_id = stack.tenant_id;
    let client = reqwest::Client::new();
    let members: Vec<String> = (0..MEMBERS).map(|i| format!("member-{i:03}")).collect();

    let arrivals: Arrivals = Arc::default();
    let mut readers = Vec::with_capacity(MEMBERS);
    for member in &members {
        let token = stack.token(&client, &base, member).await?;
        let mut hub = RawHubClient::connect(
            &hub_ws_url(&base, tenant_id, "clientId=bench"),
            Some(&token),
        )
        .await
        .map_err(|_| anyhow::anyhow!("hub connection refused"))?;
        anyhow::ensure!(hub.handshake().await == json!({}), "handshake failed");
        let recorded = arrivals.clone();
        readers.push(tokio::spawn(async move {
            while let Some(message) = hub.next_message(Duration::from_secs(30)).await {
                let event = &message["arguments"][0];
                if message["target"] == "MessagingEvent"
                    && event["type"] == "ChatMessage"
                    && let Some(id) = event["id"].as_str()
                {
                    let now = Instant::now();
                    let mut arrivals = recorded.lock().expect("clock");
                    arrivals.entry(id.to_owned()).or_default().push(now);
                }
            }
        }));
    }

    let chats = format!("{base}/tenant/{tenant_id}/v1/Chat");
    let chat: Value = client
        .post(&chats)
        .header("X-API-Key", &stack.api_key)
        .header("Of-User-Id", &members[0])
        .json(&json!({ "name": "bench", "memberIds": members }))
        .send()
        .await?
        .json()
        .await?;
    let chat_id = chat["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("chat not created: {chat}"))?
        .to_owned();

    // Messages at a steady rate from the first member; each remembers when it was sent.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let url = format!("{chats}/{chat_id}/messages");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SECOND));
    let mut requests = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        tick.tick().await;
        let (client, url, key, sender, sent) = (
            client.clone(),
            url.clone(),
            stack.api_key.clone(),
            members[0].clone(),
            sent.clone(),
        );
        requests.push(tokio::spawn(async move {
            let begun = Instant::now();
            let created: Value = client
                .post(&url)
                .header("X-API-Key", key)
                .header("Of-User-Id", sender)
                .json(&json!({ "message": format!("message {i}") }))
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
    for reader in readers {
        reader.abort();
    }
    let sent = sent.lock().expect("clock").clone();
    let arrivals = arrivals.lock().expect("clock").clone();
    let mut each = Vec::with_capacity(MESSAGES * MEMBERS);
    let mut last = Vec::with_capacity(MESSAGES);
    for (id, begun) in &sent {
        let times = arrivals.get(id).cloned().unwrap_or_default();
        each.extend(times.iter().map(|t| t.saturating_duration_since(*begun)));
        if let Some(latest) = times.iter().max() {
            last.push(latest.saturating_duration_since(*begun));
        }
    }
    let missing = MESSAGES * MEMBERS - each.len();
    let every = summarize(each, Duration::from_secs(1));
    let all = summarize(last, Duration::from_secs(1));
    let pubsub = pubsub_round_trips(PUBSUB_SAMPLES).await?;
    drop(api);

    println!();
    println!(
        "POST /Chat/{{id}}/messages → ChatMessage on each of {MEMBERS} members' hub connections, {MESSAGES} messages at {RATE_PER_SECOND}/s"
    );
    println!(
        "  each delivery            p50 {}   p99 {}   ({missing} of {} deliveries missing)",
        ms(every.p50),
        ms(every.p99),
        MESSAGES * MEMBERS
    );
    println!(
        "  last member of a message p50 {}   p99 {}",
        ms(all.p50),
        ms(all.p99)
    );
    println!(
        "  limit: Redis pub/sub RTT p50 {}   p99 {}",
        ms(pubsub.p50),
        ms(pubsub.p99)
    );
    Ok(())
}
