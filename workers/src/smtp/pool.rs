//! A small pool of SMTP connections of our own (lettre's pooled transport cannot set
//! `TCP_NODELAY`, nor stop between `DATA` and the body): idle connections are reused after a
//! `NOOP` shows them alive, at most `max_idle` are kept, broken ones are dropped.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::client::AsyncSmtpConnection;

use super::SendFailure;
use super::endpoint::Endpoint;

/// Idle connections older than this are closed instead of reused: servers drop idle clients
/// after a few minutes (RFC 5321 suggests 5), and a NOOP on a half-closed socket costs a
/// timeout's worth of waiting. lettre's pool uses the same minute.
const MAX_IDLE_TIME: Duration = Duration::from_secs(60);
/// How long a QUIT to a connection being closed may take; nobody waits for it.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle connection may take to answer NOOP before the next one is tried.
const NOOP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SmtpPool {
    endpoint: Endpoint,
    idle: Mutex<Idle<AsyncSmtpConnection>>,
}

impl SmtpPool {
    /// Keeps up to `max_idle` connections, one per job the worker runs at once.
    pub fn new(endpoint: Endpoint, max_idle: usize) -> Self {
        Self {
            endpoint,
            idle: Mutex::new(Idle::new(max_idle, MAX_IDLE_TIME)),
        }
    }

    /// A live connection: an idle one that answers `NOOP`, else a new one.
    pub async fn checkout(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        loop {
            let (reusable, expired) = self.lock().take(Instant::now());
            expired.into_iter().for_each(close);
            let Some(mut conn) = reusable else {
                return self.endpoint.connect().await;
            };
            if tokio::time::timeout(NOOP_TIMEOUT, conn.test_connected()).await == Ok(true) {
                return Ok(conn);
            }
            // Closed by the server while idle: try the next one.
        }
    }

    /// Returns a connection whose last transaction ended cleanly, for the next send.
    pub fn checkin(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        if let Some(surplus) = self.lock().put(conn, Instant::now()) {
            close(surplus);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle<AsyncSmtpConnection>> {
        // The guarded data is a plain list that no panic can leave half-updated.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Says goodbye in the background: the job that dropped it does not wait.
pub(super) fn close(mut conn: AsyncSmtpConnection) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(QUIT_TIMEOUT, conn.quit()).await;
    });
}

/// Idle connections, most recently used last (reused first, so the rest age out).
struct Idle<T> {
    parked: Vec<(T, Instant)>,
    max: usize,
    max_age: Duration,
}

impl<T> Idle<T> {
    fn new(max: usize, max_age: Duration) -> Self {
        Self {
            parked: Vec::new(),
            max,
            max_age,
        }
    }

    /// The most recently parked connection still young enough, and those too old to reuse.
    fn take(&mut self, now: Instant) -> (Option<T>, Vec<T>) {
        let (young, old): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(_, since)| now.saturating_duration_since(*since) <= self.max_age);
        self.parked = young;
        let expired = old.into_iter().map(|(conn, _)| conn).collect();
        (self.parked.pop().map(|(conn, _)| conn), expired)
    }

    /// Parks a connection; the one beyond `max` (the oldest) is handed back to be closed.
    fn put(&mut self, conn: T, now: Instant) -> Option<T> {
        self.parked.push((conn, now));
        (self.parked.len() > self.max).then(|| self.parked.remove(0).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: Duration = Duration::from_secs(60);

    #[test]
    fn the_most_recently_used_connection_is_reused_first() {
        let mut idle = Idle::new(4, AGE);
        let now = Instant::now();
        assert!(idle.put(1, now).is_none());
        assert!(idle.put(2, now).is_none());
        assert_eq!(idle.take(now), (Some(2), vec![]));
        assert_eq!(idle.take(now), (Some(1), vec![]));
        assert_eq!(idle.take(now), (None, vec![]));
    }

    #[test]
    fn at_most_max_are_kept_and_the_oldest_is_closed() {
        let mut idle = Idle::new(2, AGE);
        let now = Instant::now();
        assert!(idle.put(1, now).is_none());
        assert!(idle.put(2, now).is_none());
        assert_eq!(idle.put(3, now), Some(1));
        assert_eq!(idle.parked.len(), 2);
    }

    #[test]
    fn connections_idle_too_long_are_closed_not_reused() {
        let mut idle = Idle::new(4, AGE);
        let start = Instant::now();
        idle.put(1, start);
        idle.put(2, start + Duration::from_secs(30));
        let later = start + Duration::from_secs(75);
        assert_eq!(idle.take(later), (Some(2), vec![1]));
        assert!(idle.parked.is_empty());
    }

    #[test]
    fn no_idle_connection_means_a_new_one() {
        let mut idle = Idle::<u32>::new(0, AGE);
        assert_eq!(idle.put(7, Instant::now()), Some(7), "max 0 keeps none");
        assert_eq!(idle.take(Instant::now()), (None, vec![]));
    }
}
