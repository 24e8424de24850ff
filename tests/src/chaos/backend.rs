//! The workload's HTTP client, behaving as a well-behaved backend: every create carries an
//! Idempotency-Key, and a request that got no answer (or a 5xx) is retried with the same key
//! until a deadline. Every outcome is counted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

/// How long one attempt may take before it counts as unanswered.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a backend keeps retrying one request.
const RETRY_FOR: Duration = Duration::from_secs(90);
const KEPT_SAMPLES: usize = 12;

#[derive(Default)]
pub struct Counters {
    pub attempts: AtomicU64,
    pub accepted: AtomicU64,
    pub unanswered: AtomicU64,
    pub server_errors: AtomicU64,
    pub refused: AtomicU64,
    pub given_up: AtomicU64,
    /// The first few 5xx and 4xx answers, for the report.
    pub samples: Mutex<Vec<String>>,
}

impl Counters {
    fn sample(&self, line: String) {
        let mut samples = self.samples.lock().expect("samples");
        if samples.len() < KEPT_SAMPLES {
            samples.push(line);
        }
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

pub struct Backend {
    pub client: reqwest::Client,
    pub base_url: String,
    pub tenant_id: Uuid,
    pub api_key: String,
    pub counters: Counters,
}

/// One request as the backend sends it.
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub body: Option<&'a Value>,
    pub idempotency_key: Option<&'a str>,
    pub of_user: Option<&'a str>,
    /// Whether an unanswered attempt may be retried (only when the request is idempotent).
    pub retry: bool,
}

impl<'a> Call<'a> {
    pub fn post(path: &'a str, body: &'a Value) -> Self {
        Self {
            method: Method::POST,
            path,
            body: Some(body),
            idempotency_key: None,
            of_user: None,
            retry: true,
        }
    }

    pub fn key(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    pub fn of_user(mut self, user: &'a str) -> Self {
        self.of_user = Some(user);
        self
    }

    pub fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }
}

impl Backend {
    pub fn new(base_url: String, tenant_id: Uuid, api_key: String) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .build()
                .expect("http client"),
            base_url,
            tenant_id,
            api_key,
            counters: Counters::default(),
        }
    }

    /// Sends `call`, retrying as described above; the final status and body, or `None` when
    /// no answer other than a 5xx came before the deadline (or, without retry, at once).
    pub async fn send(&self, call: Call<'_>) -> Option<(u16, Value)> {
        let deadline = Instant::now() + RETRY_FOR;
        let counters = &self.counters;
        let url = format!(
            "{}/tenant/{}/v1/{}",
            self.base_url, self.tenant_id, call.path
        );
        loop {
            counters.attempts.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .client
                .request(call.method.clone(), &url)
                .header("X-API-Key", &self.api_key);
            if let Some(body) = call.body {
                request = request.json(body);
            }
            if let Some(key) = call.idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(user) = call.of_user {
                request = request.header("Of-User-Id", user);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if status < 400 {
                        counters.accepted.fetch_add(1, Ordering::Relaxed);
                        return Some((status, body));
                    }
                    let line =
                        format!("{status} {} {}: {}", call.method, call.path, snippet(&text));
                    if status < 500 {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        counters.sample(line);
                        return Some((status, body));
                    }
                    counters.server_errors.fetch_add(1, Ordering::Relaxed);
                    counters.sample(line);
                }
                Err(_) => {
                    counters.unanswered.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !call.retry || Instant::now() >= deadline {
                counters.given_up.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn snippet(text: &str) -> String {
    text.chars().take(160).collect()
}
