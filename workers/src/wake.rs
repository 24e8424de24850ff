//! Waking idle workers the moment a job is pushed.
//!
//! apalis-redis workers find new jobs by polling; its built-in interval strategy can leave an
//! idle worker asleep until the next heartbeat (apalis-redis's own interval strategy sometimes never fires). Herald's
//! producers publish a nudge on the queue's wake channel after every push
//! (`herald_shared::jobs`); [`WakeStrategy`] polls on each nudge (and once more just after it),
//! and on a short interval as a fallback (lost nudges, and scheduled jobs becoming due).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use futures::StreamExt;
use herald_shared::jobs::Queue;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Sleep;

/// How often an idle worker polls without a nudge. Bounds the delay of a scheduled job past
/// its due second, and of a job whose nudge was lost.
const FALLBACK_POLL: Duration = Duration::from_millis(100);

/// A second look this long after a nudge, longer than a fetch's round trip.
///
/// apalis fetches whenever its worker is polled and no fetch is in flight; the strategy can
/// only wake the worker. A nudge that arrives while a fetch is in flight wakes nothing new,
/// and that fetch may have run in Redis just before the job was pushed: it comes back empty
/// and the job would wait for the fallback poll (up to 100 ms). The second look fetches again.
const RECHECK_AFTER_NUDGE: Duration = Duration::from_millis(5);

/// Poll on a nudge (and once more shortly after it) or on the fallback tick.
pub struct WakeStrategy {
    nudges: UnboundedReceiver<()>,
    tick: tokio::time::Interval,
    recheck: Option<Pin<Box<Sleep>>>,
}

impl PollStrategy for WakeStrategy {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut fired = false;
        // Drain everything ready, so a burst of nudges costs one poll, and every source stays
        // registered with the waker.
        while let Poll::Ready(Some(())) = self.nudges.poll_recv(cx) {
            fired = true;
            if self.recheck.is_none() {
                self.recheck = Some(Box::pin(tokio::time::sleep(RECHECK_AFTER_NUDGE)));
            }
        }
        if let Some(recheck) = self.recheck.as_mut()
            && recheck.as_mut().poll(cx).is_ready()
        {
            self.recheck = None;
            fired = true;
        }
        while self.tick.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

/// The workers of one queue in this process, each with its own nudge channel.
type Subscribers = Vec<(Queue, UnboundedSender<()>)>;

/// Routes nudges from Redis to the workers of this process.
#[derive(Clone, Default)]
pub struct Wakers {
    senders: Arc<Mutex<Subscribers>>,
}

impl Wakers {
    /// A strategy for one worker of `queue`.
    pub fn strategy(&self, queue: Queue) -> WakeStrategy {
        let (sender, nudges) = unbounded_channel();
        self.senders
            .lock()
            .expect("wakers lock")
            .push((queue, sender));
        let mut tick = tokio::time::interval(FALLBACK_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        WakeStrategy {
            nudges,
            tick,
            recheck: None,
        }
    }

    fn wake(&self, queue: Queue) {
        let mut senders = self.senders.lock().expect("wakers lock");
        // A worker rebuilt after a Redis failure (`crate::supervise`) leaves its old channel closed.
        senders.retain(|(_, sender)| !sender.is_closed());
        for (q, sender) in senders.iter() {
            if *q == queue {
                let _ = sender.send(());
            }
        }
    }

    /// Listens on the wake channels of `queues` for the life of the process, reconnecting when
    /// Redis goes away (the fallback tick keeps workers going meanwhile).
    pub fn listen(&self, redis_url: &str, prefix: &str, queues: &[Queue]) {
        let this = self.clone();
        let channels: Vec<(String, Queue)> = queues
            .iter()
            .map(|q| (q.wake_channel(prefix), *q))
            .collect();
        let url = redis_url.to_owned();
        tokio::spawn(async move {
            loop {
                if let Err(error) = this.relay(&url, &channels).await {
                    tracing::warn!(%error, "wake-up channel lost; reconnecting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn relay(&self, url: &str, channels: &[(String, Queue)]) -> redis::RedisResult<()> {
        let client = herald_shared::redis_conn::client(url)?;
        let mut pubsub = client.get_async_pubsub().await?;
        for (channel, _) in channels {
            pubsub.subscribe(channel).await?;
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            if let Some((_, queue)) = channels
                .iter()
                .find(|(c, _)| c == message.get_channel_name())
            {
                self.wake(*queue);
            }
        }
        Ok(())
    }
}
