//! CPU-bound request work kept off the async threads.

/// Runs `work` (validating content: HTML sanitizing and text rendering, milliseconds for the
/// largest accepted body) on tokio's blocking pool, so a burst of large bodies cannot stall the
/// threads that answer every other request, `/healthz` included.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        // A panic in `work` resurfaces here, where it would have happened inline.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
