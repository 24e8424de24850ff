//! Shared pieces of the benchmarks: a closed-loop HTTP load generator and latency summaries.
//!
//! Benchmarks print figures; they never assert on timings (that is what makes them benchmarks,
//! not tests). Each one also measures the physical limit of the same work in the same run, so the
//! ratio stays meaningful on a noisy machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Latency percentiles of a set of samples.
pub struct Summary {
    pub count: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
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
