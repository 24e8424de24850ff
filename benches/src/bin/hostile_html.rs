//! Hostile HTML under load: 20 clients keep posting one body at a time — a hostile shape or, as
//! the limit measured in the same run, plain markup of the same size — to the notification and the
//! chat message content checks (`POST /Notifications`, `POST /Chat/{id}/messages`; broadcasts and
//! edits run one of the two), while `/healthz` is polled every 10 ms. Per row: the status counts, request times (worst included) and `/healthz`
//! times; the plain row of each size comes first, the hostile rows read against it.
//!
//! Only `herald-api` runs (with PostgreSQL and Redis): accepting a notification or a chat message
//! needs no worker. Run with `scripts/bench hostile_html` (release build).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_benches::{Stack, Summary, closed_loop, ms, summarize};
use herald_tests::hostile_html::{SHAPES, plain, sizes};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

const CLIENTS: usize = 20;
const PER_ROW: Duration = Duration::from_secs(4);
const WARM_UP: Duration = Duration::from_secs(1);
const HEALTHZ_EVERY: Duration = Duration::from_millis(10);
/// Far past anything bounded code takes; a request this slow stops the run with an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const SENDER: &str = "bench-sender";

/// A route that sanitizes HTML, and the JSON that carries a body to it.
struct Endpoint {
    name: &'static str,
    url: String,
    /// Who the API key acts for (chat messages need a sender).
    of_user: Option<&'static str>,
    payload: fn(&str) -> Value,
}

/// What one body did under load.
struct Row {
    statuses: BTreeMap<u16, usize>,
    requests: Summary,
    healthz: Summary,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::create().await?;
    let api = stack.start("herald-api").await;
    let base = api.base_url();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let v1 = format!("{base}/tenant/{}/v1", stack.tenant_id);
    let chat: Value = client
        .post(format!("{v1}/Chat"))
        .header("X-API-Key", &stack.api_key)
        .header("Of-User-Id", SENDER)
        .json(&json!({ "name": "hostile", "memberIds": [SENDER, "bench-reader"] }))
        .send()
        .await?
        .json()
        .await?;
    let chat_id = chat["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("chat not created: {chat}"))?;
    let endpoints = [
        Endpoint {
            name: "POST /Notifications",
            url: format!("{v1}/Notifications"),
            of_user: None,
            payload: |html| json!({ "userId": "bench-user", "subject": "Hostile", "type": "SystemAnnouncement", "htmlContent": html }),
        },
        Endpoint {
            name: "POST /Chat/{id}/messages",
            url: format!("{v1}/Chat/{chat_id}/messages"),
            of_user: Some(SENDER),
            payload: |html| json!({ "contentType": "Html", "htmlContent": html }),
        },
    ];
    let load = Load {
        client,
        api_key: stack.api_key.clone(),
        healthz: format!("{base}/healthz"),
    };

    // The first requests open the API's database connections; keep that out of the first row.
    load.row(&endpoints[0], &plain(16 * 1024), WARM_UP).await?;
    println!();
    println!(
        "{CLIENTS} clients posting one body each for {} s per row while /healthz is polled every {} ms (herald-api)",
        PER_ROW.as_secs(),
        HEALTHZ_EVERY.as_millis()
    );
    println!(
        "  {:<24} {:>5} {:>5} {:>5} {:>4} {:>5} | {:>10} {:>10} {:>10} | healthz {:>8} {:>9} {:>9}",
        "body", "reqs", "201", "400", "413", "other", "p50", "p99", "worst", "p50", "p99", "max"
    );
    for endpoint in &endpoints {
        println!("{}", endpoint.name);
        for (kib, bytes) in sizes() {
            let row = load.row(endpoint, &plain(bytes), PER_ROW).await?;
            print_row(&format!("plain {kib} KB (limit)"), &row);
            for (shape, build) in SHAPES {
                let row = load.row(endpoint, &build(bytes), PER_ROW).await?;
                print_row(&format!("{shape} {kib} KB"), &row);
            }
        }
    }
    println!(
        "  (targets: every request answered within 1 s, with 400 or a small stored body; /healthz < 100 ms)"
    );
    drop(api);
    Ok(())
}

struct Load {
    client: reqwest::Client,
    api_key: String,
    healthz: String,
}

impl Load {
    /// `CLIENTS` closed loops posting `html` to `endpoint` for `duration`, beside the `/healthz`
    /// poller.
    async fn row(
        &self,
        endpoint: &Endpoint,
        html: &str,
        duration: Duration,
    ) -> anyhow::Result<Row> {
        // Encoded once per row: the load generator shares the cores with the server.
        let body = serde_json::to_vec(&(endpoint.payload)(html))?;
        let statuses: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
        let (client, url, api_key, of_user) = (
            self.client.clone(),
            endpoint.url.clone(),
            self.api_key.clone(),
            endpoint.of_user,
        );
        let counted = statuses.clone();
        let request = move |_| {
            let mut post = client
                .post(&url)
                .header("X-API-Key", &api_key)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(user) = of_user {
                post = post.header("Of-User-Id", user);
            }
            let counted = counted.clone();
            async move {
                let response = post.send().await?;
                let status = response.status().as_u16();
                // A request is answered once its whole response (the stored body, on 201) is in.
                response.bytes().await?;
                *counted.lock().expect("statuses").entry(status).or_default() += 1;
                anyhow::Ok(())
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let poller = tokio::spawn(poll_healthz(self.healthz.clone(), stop.clone()));
        let requests = closed_loop(CLIENTS, duration, request).await;
        stop.store(true, Ordering::Relaxed);
        let healthz = summarize(poller.await??, duration);
        let statuses = statuses.lock().expect("statuses").clone();
        Ok(Row {
            statuses,
            requests: requests?,
            healthz,
        })
    }
}

/// `GET /healthz` every `HEALTHZ_EVERY` until `stop`, each answer's time.
async fn poll_healthz(url: String, stop: Arc<AtomicBool>) -> anyhow::Result<Vec<Duration>> {
    // A client of its own: the probe must not queue behind the load's connections.
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut tick = tokio::time::interval(HEALTHZ_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let begun = Instant::now();
        let status = client.get(&url).send().await?.status();
        anyhow::ensure!(status.is_success(), "/healthz answered {status}");
        samples.push(begun.elapsed());
    }
    Ok(samples)
}

fn print_row(label: &str, row: &Row) {
    let count = |status| row.statuses.get(&status).copied().unwrap_or_default();
    let other = row.requests.count - count(201) - count(400) - count(413);
    println!(
        "  {label:<24} {:>5} {:>5} {:>5} {:>4} {:>5} | {:>10} {:>10} {:>10} |         {:>8} {:>9} {:>9}",
        row.requests.count,
        count(201),
        count(400),
        count(413),
        other,
        ms(row.requests.p50),
        ms(row.requests.p99),
        ms(row.requests.max),
        ms(row.healthz.p50),
        ms(row.healthz.p99),
        ms(row.healthz.max),
    );
}
