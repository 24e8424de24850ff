//! Keeping workers alive through Redis losing everything or going away.
//!
//! An apalis-redis worker stops for good on its first backend error: a heartbeat or fetch
//! after FLUSHALL fails with "worker not registered", and one while Redis is down fails to
//! connect. [`supervise`] runs each worker under its own `Monitor` and, until the process is
//! asked to stop, builds a fresh one a moment after the previous one stopped, under a fresh
//! name (apalis-redis leaves a worker that reuses a still-registered name idle); the new worker registers again and resumes. Jobs Redis lost meanwhile
//! are queued again by the scheduler's sweep from PostgreSQL.
//!
//! What happens to the jobs running when a worker stops (apalis-core 1.0): on a backend error
//! the worker's stream yields the error and `Monitor` returns at once, dropping the worker with
//! the futures of its running jobs — they stop at their next `.await`, and neither
//! `shutdown_timeout` nor a drain applies. Those two serve only the shutdown signal: then the
//! worker stops fetching, keeps polling its running jobs until none is left, and the
//! `shutdown_timeout` (here [`SHUTDOWN_GRACE`]) cuts the wait short. A dropped job is harmless
//! where the job is a database transaction (rolled back, redone by its next run), not in the
//! middle of an SMTP exchange: `herald-email` therefore runs each send in a task of its own
//! (`crate::email::send_email`), which finishes and records its outcome when its job's future
//! is dropped, while the rebuilt worker starts fetching.

use std::future::Future;
use std::time::Duration;

use apalis::prelude::Monitor;
use tokio::sync::watch;

use crate::runtime::SHUTDOWN_GRACE;

/// Pause before rebuilding a stopped worker: long enough not to spin while Redis is down,
/// short enough that work resumes within a couple of seconds of Redis coming back.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Whether the process was asked to stop; cheap to clone into every supervised worker.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Watches SIGTERM / ctrl-c for the life of the process.
    pub fn on_signal() -> Self {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            herald_shared::shutdown::signal().await;
            let _ = sender.send(true);
        });
        Self(receiver)
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the process is asked to stop.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Runs the worker `monitor` builds until shutdown, rebuilding it whenever it stops early.
pub async fn supervise<F>(kind: &str, shutdown: Shutdown, mut monitor: F)
where
    F: FnMut() -> Monitor,
{
    loop {
        let signal = shutdown.clone().wait();
        let outcome = monitor()
            .shutdown_timeout(SHUTDOWN_GRACE)
            .run_with_signal(async {
                signal.await;
                Ok(())
            })
            .await;
        if shutdown.requested() {
            return;
        }
        match outcome {
            Ok(()) => tracing::warn!(kind, "worker stopped; starting a new one"),
            Err(error) => tracing::warn!(kind, %error, "worker failed; starting a new one"),
        }
        if wait_or_shutdown(RESTART_DELAY, shutdown.clone().wait()).await {
            return;
        }
    }
}

/// Sleeps `delay`; true when shutdown came first.
async fn wait_or_shutdown(delay: Duration, shutdown: impl Future<Output = ()>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        () = shutdown => true,
    }
}
