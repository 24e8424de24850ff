//! Shared pieces of the benchmarks: a closed-loop HTTP load generator and latency summaries.
//!
//! Benchmarks print figures; they never assert on timings (that is what makes them benchmarks,
//! not tests). Each one also measures the physical limit of the same work in the same run, so the
//! ratio stays meaningful on a noisy machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use herald_tests::database::TestDatabase;
use herald_tests::process::HeraldProcess;
use herald_tests::{TEST_JWT_SECRET, redis_url};
use serde_json::{Value, json};
use uuid::Uuid;

/// A fresh database with one tenant and its API key, and the environment Herald processes run
/// with against it (a Redis prefix of their own).
pub struct Stack {
    pub db: TestDatabase,
    pub tenant_id: Uuid,
    pub api_key: String,
    pub env: Vec<(String, String)>,
}

impl Stack {
    pub async fn create() -> anyhow::Result<Self> {
        let db = TestDatabase::create().await;
        let pool = db.pool().await;
        let key = herald_shared::auth::api_key::generate();
        let mut tx = pool.begin().await?;
        let tenant = herald_shared::db::tenants::insert(&mut tx, "bench").await?;
        herald_shared::db::api_keys::insert(&mut tx, tenant.id, &key).await?;
        tx.commit().await?;
        let prefix = format!("bench{}", &Uuid::new_v4().simple().to_string()[..8]);
        let env = [
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
        Ok(Self {
            db,
            tenant_id: tenant.id,
            api_key: key.plaintext,
            env,
        })
    }

    /// Starts a Herald binary on a free port and waits until it is healthy.
    pub async fn start(&self, binary: &str) -> HeraldProcess {
        let mut process = HeraldProcess::start(binary, &self.env).await;
        process.wait_healthy().await;
        process
    }

    /// A user token from token exchange on the API at `base`.
    pub async fn token(
        &self,
        client: &reqwest::Client,
        base: &str,
        user: &str,
    ) -> anyhow::Result<String> {
        let body: Value = client
            .post(format!(
                "{base}/tenant/{}/v1/Auth/token-exchange",
                self.tenant_id
            ))
            .header("X-API-Key", &self.api_key)
            .json(&json!({ "userId": user }))
            .send()
            .await?
            .json()
            .await?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("token exchange failed: {body}"))
    }
}

/// The physical limit of live delivery: PUBLISH → subscriber receives, one message at a time.
pub async fn pubsub_round_trips(samples: usize) -> anyhow::Result<Summary> {
    let client = redis::Client::open(redis_url())?;
    let mut subscriber = client.get_async_pubsub().await?;
    subscriber.subscribe("herald-bench:rtt").await?;
    let mut messages = subscriber.on_message();
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
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
        taken.push(begun.elapsed());
    }
    Ok(summarize(taken, Duration::from_secs(1)))
}

/// Latency percentiles of a set of samples.
pub struct Summary {
    pub count: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn summarize(mut samples: Vec<Duration>, elapsed: Duration) -> Summary {
    samples.sort_unstable();
    let pick = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Summary {
        count: samples.len(),
        per_second: samples.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

/// Runs `request` from `concurrency` loops for `duration` and summarizes the latencies of the
/// successful calls. `request` receives a per-call counter (to vary pages, ids, …).
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    duration: Duration,
    request: F,
) -> anyhow::Result<Summary>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = worker as u64;
                while Instant::now() < deadline {
                    let begun = Instant::now();
                    request(n).await?;
                    samples.push(begun.elapsed());
                    n += concurrency as u64;
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for worker in workers {
        samples.extend(worker.await??);
    }
    Ok(summarize(samples, started.elapsed()))
}

/// Milliseconds with two decimals, for printing.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
