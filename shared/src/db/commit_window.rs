//! Why the hub's catch-up cannot miss a late commit: every transaction that stamps an event's
//! time commits within [`COMMIT_BUDGET`] of starting, and the catch-up replays
//! [`REPLAY_OVERLAP`] before the client's last event.
//!
//! An event's times (`created_at`, `sent_at`) are taken inside its transaction, before the
//! commit, and its live event is published after the commit. So a transaction stamped before
//! an event the client already received can commit — and publish — after that event, while the
//! client is away: a replay of "everything after `lastEventAt`" would skip it. Bounding each
//! stamping transaction bounds how far back such an event can lie: it was published after the
//! client's last event, and stamped at most the budget before its own commit. The overlap adds
//! room for the publish after the commit and for clock differences between Herald's hosts.
//! The price is that a reconnect repeats the overlap's events the client already had, which
//! clients drop by `id` (the README says so).
//!
//! A transaction over budget is rolled back ([`CommitClock::commit`] refuses it) and written
//! again with fresh stamps: jobs by their retry, requests by the client's (a 503).

use std::time::{Duration, Instant};

use sqlx::{Postgres, Transaction};

/// Longest a transaction may run, from its `BEGIN` to its `COMMIT`, when it stamps event times.
/// A 10,000-row fan-out chunk takes well under a second on a loaded 2-core machine.
pub const COMMIT_BUDGET: Duration = Duration::from_secs(5);

/// How far before a client's `lastEventAt` the catch-up replays: the budget, plus room for the
/// publish that follows a commit and for the clocks of Herald's hosts to differ.
pub const REPLAY_OVERLAP: Duration = Duration::from_secs(10);

/// A stamping transaction ran past [`COMMIT_BUDGET`] and was rolled back.
#[derive(Debug, thiserror::Error)]
#[error(
    "the transaction took {0:?}, over the {COMMIT_BUDGET:?} budget of one that stamps event times; rolled back to be written again"
)]
pub struct LateCommit(pub Duration);

/// Carried as an I/O timeout so callers holding a `sqlx::Result` pass it on unchanged; the API
/// recognises it ([`late_commit`]) and answers 503.
impl From<LateCommit> for sqlx::Error {
    fn from(late: LateCommit) -> Self {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, late))
    }
}

/// The [`LateCommit`] inside `error`, if that is what it is.
pub fn late_commit(error: &sqlx::Error) -> Option<&LateCommit> {
    match error {
        sqlx::Error::Io(io) => io.get_ref()?.downcast_ref::<LateCommit>(),
        _ => None,
    }
}

/// Started just before a stamping transaction's `BEGIN` (PostgreSQL's `now()` is the time of
/// the `BEGIN`, so the clock covers stamps taken in SQL as well as in Rust).
#[derive(Debug, Clone, Copy)]
pub struct CommitClock(Instant);

impl CommitClock {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Time since the clock started (the transaction's `BEGIN`, and after).
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    /// Commits `tx` if it is within budget; rolls it back with [`LateCommit`] otherwise.
    pub async fn commit(self, tx: Transaction<'_, Postgres>) -> sqlx::Result<()> {
        let elapsed = self.elapsed();
        if elapsed > COMMIT_BUDGET {
            tx.rollback().await?;
            return Err(LateCommit(elapsed).into());
        }
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_commit_survives_the_trip_through_sqlx_error() {
        let error: sqlx::Error = LateCommit(Duration::from_secs(6)).into();
        assert_eq!(
            late_commit(&error).map(|l| l.0),
            Some(Duration::from_secs(6))
        );
        let other = sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        assert!(late_commit(&other).is_none());
        assert!(late_commit(&sqlx::Error::PoolTimedOut).is_none());
    }

    #[test]
    fn the_overlap_covers_the_budget_with_room_to_spare() {
        assert!(REPLAY_OVERLAP >= COMMIT_BUDGET * 2);
    }
}
