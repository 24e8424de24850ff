//! One connection's queue of events waiting to be written to its socket, and the signal that
//! ends the connection from outside (the client fell behind, or the node is stopping).
//!
//! Bounded: when a client stops reading, its socket stops draining, the queue fills, and the
//! connection is marked overflowed so its task drops it — a slow client can never make the node
//! hold unbounded memory. A tokio mpsc could bound the queue too, but the task blocked on a
//! full socket would never learn it had been dropped; here the overflow itself wakes it.
//!
//! Kept small on purpose (an idle connection holds one of these): a mutex-guarded queue that
//! allocates only while events are waiting, and the task's waker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::expiry::Lease;

#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Arc<str>>,
    waker: Option<Waker>,
    /// Set once; the connection must end.
    ended: Option<Delivery>,
    /// Until when the connection's credential holds ([`super::expiry`] checks it).
    lease: Option<Lease>,
}

/// What the connection task gets from its outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Events were handed over.
    Events,
    /// The client fell too far behind; the connection must end.
    Overflowed,
    /// The node is stopping; the client must be told to reconnect.
    ShuttingDown,
    /// The user's token expired; the client must reconnect with a fresh one.
    TokenExpired,
    /// The API key that minted the user's token was revoked.
    KeyRevoked,
    /// Events may have been lost while the node's Redis subscription was down; the client
    /// must reconnect (and catch up with `lastEventAt`).
    EventsLost,
}

impl Outbox {
    /// Queues an event record. Returns false (and marks the outbox overflowed, waking its task)
    /// when `capacity` events are already waiting.
    pub fn push(&self, record: Arc<str>, capacity: usize) -> bool {
        let mut state = self.lock();
        if state.ended.is_some() {
            return false;
        }
        if state.queue.len() >= capacity {
            state.ended = Some(Delivery::Overflowed);
            state.queue = VecDeque::new();
        } else {
            state.queue.push_back(record);
        }
        let accepted = state.ended.is_none();
        Self::wake(state);
        accepted
    }

    /// Ends the connection because the node is stopping.
    pub fn shut_down(&self) {
        self.end(Delivery::ShuttingDown);
    }

    /// Ends the connection for `why` (the first reason given is kept).
    pub fn end(&self, why: Delivery) {
        let mut state = self.lock();
        state.ended.get_or_insert(why);
        Self::wake(state);
    }

    /// Records the credential the connection was opened with.
    pub fn set_lease(&self, lease: Lease) {
        self.lock().lease = Some(lease);
    }

    pub fn lease(&self) -> Option<Lease> {
        self.lock().lease
    }

    /// Ends the connection because events may have been lost on the way to it.
    pub fn lost_events(&self) {
        let mut state = self.lock();
        state.ended.get_or_insert(Delivery::EventsLost);
        Self::wake(state);
    }

    fn wake(mut state: MutexGuard<'_, State>) {
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// How many events are waiting.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Waits for events (handing up to `max` to `each`, oldest first) when `accepting`; reports
    /// the end (overflow, shutdown) at any time, so a task busy writing still learns it must
    /// stop.
    pub fn poll_take(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        accepting: bool,
        mut each: impl FnMut(Arc<str>),
    ) -> Poll<Delivery> {
        let mut state = self.lock();
        if let Some(ended) = state.ended {
            return Poll::Ready(ended);
        }
        if accepting && !state.queue.is_empty() {
            let take = state.queue.len().min(max);
            state.queue.drain(..take).for_each(&mut each);
            if state.queue.is_empty() {
                // Give back the memory a burst made the queue allocate.
                state.queue = VecDeque::new();
            }
            return Poll::Ready(Delivery::Events);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits as [`Outbox::poll_take`] does, collecting the events into `batch`.
    pub async fn take(&self, batch: &mut Vec<Arc<str>>, max: usize, accepting: bool) -> Delivery {
        std::future::poll_fn(|cx| self.poll_take(cx, max, accepting, |record| batch.push(record)))
            .await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The critical sections cannot panic; recover the data rather than poison every sender.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    #[tokio::test]
    async fn events_come_out_in_order_in_batches() {
        let outbox = Outbox::default();
        for text in ["a", "b", "c"] {
            assert!(outbox.push(record(text), 10));
        }
        let mut batch = Vec::new();
        assert_eq!(outbox.take(&mut batch, 2, true).await, Delivery::Events);
        assert_eq!(batch, vec![record("a"), record("b")]);
        batch.clear();
        assert_eq!(outbox.take(&mut batch, 2, true).await, Delivery::Events);
        assert_eq!(batch, vec![record("c")]);
        assert_eq!(outbox.queued(), 0);
    }

    #[tokio::test]
    async fn a_full_outbox_overflows_and_wakes_a_task_that_is_not_taking_events() {
        let outbox = Arc::new(Outbox::default());
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.take(&mut Vec::new(), 10, false).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(outbox.push(record("a"), 2));
        assert!(outbox.push(record("b"), 2));
        assert!(
            !waiting.is_finished(),
            "not accepting: events alone do not end the wait"
        );
        assert!(!outbox.push(record("c"), 2));
        let delivery = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken by the overflow")
            .unwrap();
        assert_eq!(delivery, Delivery::Overflowed);
        assert_eq!(outbox.queued(), 0, "the queued events are released at once");
        assert!(
            !outbox.push(record("d"), 2),
            "an overflowed outbox stays closed"
        );
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_by_a_new_event() {
        let outbox = Arc::new(Outbox::default());
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let mut batch = Vec::new();
                outbox.take(&mut batch, 10, true).await;
                batch
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        outbox.push(record("x"), 10);
        let batch = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(batch, vec![record("x")]);
    }
}
