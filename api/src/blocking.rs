//! CPU-bound request work kept off the async threads.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

/// At most one content check per core at a time. Without the cap, 20 large bodies in flight
/// are 20 blocking threads sharing the cores with the async threads: every other request,
/// `/healthz` included, waits behind them for CPU. With it the extra bodies wait for a permit
/// asynchronously, costing nothing while they wait.
static CONTENT_CHECKS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Semaphore::new(cores)
});

/// Runs `work` (validating content: HTML sanitizing and text rendering, milliseconds for the
/// largest accepted body) on tokio's blocking pool, so a burst of large bodies cannot stall the
/// threads that answer every other request, `/healthz` included.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    // The semaphore is never closed, so acquiring only waits.
    let _permit = CONTENT_CHECKS.acquire().await;
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        // A panic in `work` resurfaces here, where it would have happened inline.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
