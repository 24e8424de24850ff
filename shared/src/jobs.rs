//! Job payloads, queue names and the producer every process uses to enqueue work (SPEC §6).
//!
//! Jobs only name records: the data lives in PostgreSQL, so any job can be re-derived from the
//! database by the scheduler's sweep when Redis loses it. Every handler is idempotent.
//!
//! Idle workers would otherwise notice a new job only at their next poll; after each push the
//! producer publishes a one-byte nudge on the queue's wake channel, which workers subscribe to
//! (see `herald_workers::wake`), so a job starts within a millisecond or two.

use std::time::{Duration, SystemTime};

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{Config, RedisStorage};
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Deliver one notification: publish its event, mark it `Sent`, queue its email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliver {
    pub tenant_id: Uuid,
    pub notification_id: Uuid,
}

/// Fan out a broadcast. Without a `lane`, start it: split the audience into lanes and queue
/// each lane's first chunk. With one, write that lane's next chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOut {
    pub tenant_id: Uuid,
    pub broadcast_id: Uuid,
    /// Absent in jobs queued before lanes existed (their `cursor` field is ignored): they decode
    /// as starts, which find the broadcast already fanning out and leave it to its lanes
    /// (resumed by the sweep).
    #[serde(default)]
    pub lane: Option<LanePosition>,
}

/// Where a lane's next chunk starts: after `cursor`, the last user id done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanePosition {
    pub lane: i16,
    pub cursor: String,
}

impl FanOut {
    pub fn start(tenant_id: Uuid, broadcast_id: Uuid) -> Self {
        Self {
            tenant_id,
            broadcast_id,
            lane: None,
        }
    }

    pub fn chunk(tenant_id: Uuid, broadcast_id: Uuid, lane: i16, cursor: String) -> Self {
        Self {
            tenant_id,
            broadcast_id,
            lane: Some(LanePosition { lane, cursor }),
        }
    }
}

/// Send the next chunk of a chat broadcast, after target position `cursor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatFanOut {
    pub tenant_id: Uuid,
    pub broadcast_id: Uuid,
    pub cursor: i32,
}

/// Email one notification (at most once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmail {
    pub tenant_id: Uuid,
    pub notification_id: Uuid,
}

/// The queues, named under `HERALD_REDIS_PREFIX` so installs sharing a Redis never meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Deliver,
    FanOut,
    ChatFanOut,
    Email,
}

impl Queue {
    pub const ALL: [Queue; 4] = [
        Queue::Deliver,
        Queue::FanOut,
        Queue::ChatFanOut,
        Queue::Email,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Queue::Deliver => "deliver",
            Queue::FanOut => "fanout",
            Queue::ChatFanOut => "chatfanout",
            Queue::Email => "email",
        }
    }

    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}:jobs:{}", self.suffix())
    }

    /// The pub/sub channel that wakes idle workers of this queue.
    pub fn wake_channel(self, prefix: &str) -> String {
        format!("{prefix}:wake:{}", self.suffix())
    }

    /// The apalis-redis configuration; producers and workers must use the same one.
    pub fn config(self, prefix: &str) -> Config {
        Config::default()
            .queue(self.name(prefix))
            // A dead worker's jobs are taken over after a few missed heartbeats, not minutes.
            .heartbeat_interval(Duration::from_secs(3))
            // Nobody listens to job events (outcomes live in PostgreSQL): skip a publish per job.
            .emit_events(false)
    }
}

pub type JobError = apalis::prelude::TaskSinkError<apalis_redis::Error>;

/// Enqueues jobs. Cheap to clone.
#[derive(Clone)]
pub struct Queues {
    prefix: String,
    conn: ConnectionManager,
}

impl Queues {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            conn,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn storage<T>(&self, queue: Queue) -> RedisStorage<T> {
        RedisStorage::new(self.conn.clone()).with_config(queue.config(&self.prefix))
    }

    /// The storage a worker of `queue` consumes, fetching as many jobs at a time as it runs at
    /// once (apalis-redis fetches 10 by default, which caps a worker near 10 jobs per round trip
    /// cycle however high its concurrency).
    pub fn worker_storage<T>(&self, queue: Queue, concurrency: usize) -> RedisStorage<T> {
        RedisStorage::new(self.conn.clone())
            .with_config(queue.config(&self.prefix).batch_size(concurrency.max(1)))
    }

    pub async fn deliver(&self, job: Deliver) -> Result<(), JobError> {
        self.storage(Queue::Deliver).push(job).await?;
        self.nudge(Queue::Deliver).await;
        Ok(())
    }

    /// Queues delivery for `due` (whole seconds; the handler waits out the remainder, so the
    /// notification arrives at its exact time).
    pub async fn deliver_at(&self, job: Deliver, due: DateTime<Utc>) -> Result<(), JobError> {
        let when = SystemTime::from(due);
        let task = TaskBuilder::new(job).run_at_time(when).build();
        self.storage::<Deliver>(Queue::Deliver)
            .push_task(task)
            .await
    }

    pub async fn fan_out(&self, job: FanOut) -> Result<(), JobError> {
        self.storage(Queue::FanOut).push(job).await?;
        self.nudge(Queue::FanOut).await;
        Ok(())
    }

    pub async fn fan_out_at(&self, job: FanOut, due: DateTime<Utc>) -> Result<(), JobError> {
        let task = TaskBuilder::new(job)
            .run_at_time(SystemTime::from(due))
            .build();
        self.storage::<FanOut>(Queue::FanOut).push_task(task).await
    }

    pub async fn chat_fan_out(&self, job: ChatFanOut) -> Result<(), JobError> {
        self.storage(Queue::ChatFanOut).push(job).await?;
        self.nudge(Queue::ChatFanOut).await;
        Ok(())
    }

    /// Several fan-out jobs in one round trip (a broadcast's lanes).
    pub async fn fan_outs(&self, jobs: Vec<FanOut>) -> Result<(), JobError> {
        self.push_all(Queue::FanOut, jobs).await
    }

    pub async fn send_emails(&self, jobs: Vec<SendEmail>) -> Result<(), JobError> {
        self.push_all(Queue::Email, jobs).await
    }

    async fn push_all<T, Kind>(&self, queue: Queue, jobs: Vec<T>) -> Result<(), JobError>
    where
        RedisStorage<T>: TaskSink<T, Kind, Error = apalis_redis::Error>,
    {
        if jobs.is_empty() {
            return Ok(());
        }
        self.storage(queue).push_bulk(jobs).await?;
        self.nudge(queue).await;
        Ok(())
    }

    /// Wakes idle workers; a lost nudge only delays a job until the next poll.
    async fn nudge(&self, queue: Queue) {
        let mut conn = self.conn.clone();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(queue.wake_channel(&self.prefix))
            .arg("1")
            .query_async(&mut conn)
            .await;
        if let Err(error) = sent {
            tracing::debug!(%error, "wake-up nudge not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_live_under_the_prefix() {
        assert_eq!(Queue::Deliver.name("herald"), "herald:jobs:deliver");
        assert_eq!(Queue::Email.wake_channel("t1"), "t1:wake:email");
        assert!(
            Queue::ALL
                .iter()
                .all(|q| q.config("p").queue.to_string().starts_with("p:jobs:"))
        );
    }
}
