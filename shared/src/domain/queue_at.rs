//! When a piece of work goes to the job queue: decided here once, for notifications and
//! broadcasts alike, where the work is created and where the scheduler claims it.

use chrono::{DateTime, Duration, Utc};

/// Work due within this long is queued by whoever creates it, at its exact time; the
/// scheduler's minute ticks would otherwise be too late for it.
pub const QUEUE_DIRECTLY_WITHIN: Duration = Duration::seconds(60);

/// Where a piece of work's job comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAt {
    /// Queued at once.
    Now,
    /// Queued now to run at this time.
    At(DateTime<Utc>),
    /// Not queued yet: the scheduler claims its schedule record when the time is near.
    Scheduler,
}

impl QueueAt {
    /// For work created at `now` and due at `due` (`None`: at once).
    pub fn on_create(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match due {
            None => Self::Now,
            Some(due) if due < now + QUEUE_DIRECTLY_WITHIN => Self::At(due),
            Some(_) => Self::Scheduler,
        }
    }

    /// For a schedule record the scheduler claimed at `now`, due at `due`.
    pub fn on_claim(due: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if due <= now { Self::Now } else { Self::At(due) }
    }

    /// Whether the creator queues it, so its schedule record starts `Queued` and no scheduler
    /// claims it as well.
    pub fn by_creator(self) -> bool {
        self != Self::Scheduler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_due_soon_is_queued_by_its_creator_for_its_time_and_later_work_by_the_scheduler() {
        let now = Utc::now();
        assert_eq!(QueueAt::on_create(None, now), QueueAt::Now);
        let soon = now + Duration::seconds(59);
        assert_eq!(QueueAt::on_create(Some(soon), now), QueueAt::At(soon));
        let later = now + QUEUE_DIRECTLY_WITHIN;
        assert_eq!(QueueAt::on_create(Some(later), now), QueueAt::Scheduler);
        assert!(!QueueAt::Scheduler.by_creator() && QueueAt::At(soon).by_creator());
    }

    #[test]
    fn a_claimed_record_runs_now_when_due_and_at_its_time_otherwise() {
        let now = Utc::now();
        assert_eq!(QueueAt::on_claim(now, now), QueueAt::Now);
        let soon = now + Duration::seconds(5);
        assert_eq!(QueueAt::on_claim(soon, now), QueueAt::At(soon));
    }
}
