//! Job payloads, queue names and the producer every process uses to enqueue work.
//!
//! Jobs only name records: the data lives in PostgreSQL, so any job can be re-derived from the
//! database by the scheduler's sweep when Redis loses it. Every handler is idempotent.
//!
//! Idle workers would otherwise notice a new job only at their next poll; after each push the
//! producer publishes a one-byte nudge on the queue's wake channel, which workers subscribe to
//! (see `herald_workers::wake`), so a job starts within a millisecond or two.
//!
//! Every job carries a task id derived from the work it names ([`WorkItem::task_id`]).
//! apalis-redis stores a task with `HSETNX` on its id, so pushing a job whose copy still waits
//! (or runs) adds nothing: the sweep can re-queue everything that looks stalled each tick and
//! Redis still holds one job per unit of work, however long a backlog lasts. Once a job has
//! finished and the sweep's vacuum removed it, the same id can be queued again.

use std::time::{Duration, SystemTime};

use apalis::prelude::{Task, TaskBuilder, TaskId, TaskSink};
use apalis_redis::{Config, RedisStorage};
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::deliveries::{DeliveryKey, OWN_ADDRESS};
use crate::domain::QueueAt;
use crate::domain::target::TargetKind;

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

/// Send one delivery: a notification to one target on one channel (at most once). Jobs queued
/// before channels existed name only the notification: they decode as its own email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    pub tenant_id: Uuid,
    pub notification_id: Uuid,
    #[serde(default = "email_channel")]
    pub channel: TargetKind,
    #[serde(default)]
    pub target_id: Uuid,
}

fn email_channel() -> TargetKind {
    TargetKind::Email
}

impl Dispatch {
    pub fn key(&self) -> DeliveryKey {
        DeliveryKey {
            tenant_id: self.tenant_id,
            notification_id: self.notification_id,
            channel: self.channel,
            target_id: self.target_id,
        }
    }

    /// The queue whose workers send it: email has its own (`herald-email`, SMTP), the
    /// HTTP channels share one (`herald-channels`).
    pub fn queue(&self) -> Queue {
        match self.channel {
            TargetKind::Email => Queue::Email,
            TargetKind::WebPush | TargetKind::Sms | TargetKind::Webhook => Queue::Channels,
        }
    }
}

impl From<DeliveryKey> for Dispatch {
    fn from(key: DeliveryKey) -> Self {
        Self {
            tenant_id: key.tenant_id,
            notification_id: key.notification_id,
            channel: key.channel,
            target_id: key.target_id,
        }
    }
}

/// A job naming one unit of work, so the same work always gets the same task id.
pub trait WorkItem {
    fn task_id(&self) -> String;

    /// Whose work it is: every job's tracing span carries it.
    fn tenant_id(&self) -> Uuid;
}

impl WorkItem for Deliver {
    fn task_id(&self) -> String {
        format!("deliver:{}:{}", self.tenant_id, self.notification_id)
    }

    fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }
}

impl WorkItem for FanOut {
    /// A lane's chunk is named by where it starts: a copy queued for a cursor the lane has
    /// moved past is a different (stale, harmless) task.
    fn task_id(&self) -> String {
        match &self.lane {
            None => format!("fanout:{}:{}:start", self.tenant_id, self.broadcast_id),
            Some(position) => format!(
                "fanout:{}:{}:{}:{}",
                self.tenant_id, self.broadcast_id, position.lane, position.cursor
            ),
        }
    }

    fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }
}

impl WorkItem for ChatFanOut {
    fn task_id(&self) -> String {
        format!(
            "chatfanout:{}:{}:{}",
            self.tenant_id, self.broadcast_id, self.cursor
        )
    }

    fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }
}

impl WorkItem for Dispatch {
    /// The notification's own email keeps the id it had before channels existed.
    fn task_id(&self) -> String {
        if self.channel == TargetKind::Email && self.target_id == OWN_ADDRESS {
            format!("email:{}:{}", self.tenant_id, self.notification_id)
        } else {
            format!(
                "{}:{}:{}:{}",
                self.channel.as_str(),
                self.tenant_id,
                self.notification_id,
                self.target_id
            )
        }
    }

    fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }
}

/// The task for `job`, under its work's id, due at `due` (now when `None`).
fn task_for<T: WorkItem>(job: T, due: Option<DateTime<Utc>>) -> Task<T> {
    let id = TaskId::from_string(job.task_id());
    let builder = TaskBuilder::new(job).task_id(id);
    match due {
        Some(due) => builder.run_at_time(SystemTime::from(due)).build(),
        None => builder.build(),
    }
}

/// The queues, named under `HERALD_REDIS_PREFIX` so installs sharing a Redis never meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Deliver,
    FanOut,
    ChatFanOut,
    Email,
    /// Web push, SMS and webhook deliveries.
    Channels,
}

impl Queue {
    pub const ALL: [Queue; 5] = [
        Queue::Deliver,
        Queue::FanOut,
        Queue::ChatFanOut,
        Queue::Email,
        Queue::Channels,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Queue::Deliver => "deliver",
            Queue::FanOut => "fanout",
            Queue::ChatFanOut => "chatfanout",
            Queue::Email => "email",
            Queue::Channels => "channels",
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
        self.push_all(Queue::Deliver, vec![job]).await
    }

    /// Several deliveries in one round trip (the sweep).
    pub async fn delivers(&self, jobs: Vec<Deliver>) -> Result<(), JobError> {
        self.push_all(Queue::Deliver, jobs).await
    }

    /// Queues delivery for `due` (whole seconds; the handler waits out the remainder, so the
    /// notification arrives at its exact time).
    pub async fn deliver_at(&self, job: Deliver, due: DateTime<Utc>) -> Result<(), JobError> {
        self.storage::<Deliver>(Queue::Deliver)
            .push_task(task_for(job, Some(due)))
            .await
    }

    /// Queues delivery for `due` from inside the delivery job itself: that job still holds its
    /// work's task id, so this copy gets a fresh one.
    pub async fn deliver_again_at(&self, job: Deliver, due: DateTime<Utc>) -> Result<(), JobError> {
        let task = TaskBuilder::new(job)
            .run_at_time(SystemTime::from(due))
            .build();
        self.storage::<Deliver>(Queue::Deliver)
            .push_task(task)
            .await
    }

    /// Queues delivery as `queue` says (nothing for [`QueueAt::Scheduler`]).
    pub async fn deliver_when(&self, job: Deliver, queue: QueueAt) -> Result<(), JobError> {
        match queue {
            QueueAt::Now => self.deliver(job).await,
            QueueAt::At(due) => self.deliver_at(job, due).await,
            QueueAt::Scheduler => Ok(()),
        }
    }

    /// Queues a broadcast's start as `queue` says (nothing for [`QueueAt::Scheduler`]).
    pub async fn fan_out_when(&self, job: FanOut, queue: QueueAt) -> Result<(), JobError> {
        match queue {
            QueueAt::Now => self.fan_out(job).await,
            QueueAt::At(due) => self.fan_out_at(job, due).await,
            QueueAt::Scheduler => Ok(()),
        }
    }

    pub async fn fan_out(&self, job: FanOut) -> Result<(), JobError> {
        self.push_all(Queue::FanOut, vec![job]).await
    }

    pub async fn fan_out_at(&self, job: FanOut, due: DateTime<Utc>) -> Result<(), JobError> {
        self.storage::<FanOut>(Queue::FanOut)
            .push_task(task_for(job, Some(due)))
            .await
    }

    pub async fn chat_fan_out(&self, job: ChatFanOut) -> Result<(), JobError> {
        self.push_all(Queue::ChatFanOut, vec![job]).await
    }

    /// Several chat fan-out jobs in one round trip (the sweep).
    pub async fn chat_fan_outs(&self, jobs: Vec<ChatFanOut>) -> Result<(), JobError> {
        self.push_all(Queue::ChatFanOut, jobs).await
    }

    /// Several fan-out jobs in one round trip (a broadcast's lanes).
    pub async fn fan_outs(&self, jobs: Vec<FanOut>) -> Result<(), JobError> {
        self.push_all(Queue::FanOut, jobs).await
    }

    /// Queues deliveries, each on its channel's queue (one round trip per queue).
    pub async fn dispatch(&self, jobs: Vec<Dispatch>) -> Result<(), JobError> {
        let (email, channels): (Vec<Dispatch>, Vec<Dispatch>) = jobs
            .into_iter()
            .partition(|job| job.queue() == Queue::Email);
        self.push_all(Queue::Email, email).await?;
        self.push_all(Queue::Channels, channels).await
    }

    /// Pushes `jobs` under their work's task ids in one round trip (one Lua call), then nudges.
    async fn push_all<T, Kind>(&self, queue: Queue, jobs: Vec<T>) -> Result<(), JobError>
    where
        T: WorkItem + Send,
        RedisStorage<T>: TaskSink<T, Kind, Error = apalis_redis::Error>,
    {
        if jobs.is_empty() {
            return Ok(());
        }
        let tasks = jobs.into_iter().map(|job| task_for(job, None));
        self.storage(queue)
            .push_all(futures::stream::iter(tasks))
            .await?;
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

    #[test]
    fn email_jobs_queued_before_channels_decode_as_the_notifications_own_email() {
        let (tenant, id) = (Uuid::now_v7(), Uuid::now_v7());
        let old = serde_json::json!({ "tenant_id": tenant, "notification_id": id });
        let job: Dispatch = serde_json::from_value(old).unwrap();
        assert_eq!(job.key(), DeliveryKey::own_email(tenant, id));
    }

    #[test]
    fn the_same_work_gets_the_same_task_id() {
        let (tenant, id) = (Uuid::now_v7(), Uuid::now_v7());
        let deliver = Deliver {
            tenant_id: tenant,
            notification_id: id,
        };
        assert_eq!(deliver.task_id(), deliver.clone().task_id());
        let email = Dispatch::from(DeliveryKey::own_email(tenant, id));
        assert_ne!(deliver.task_id(), email.task_id());
        assert_eq!(email.task_id(), format!("email:{tenant}:{id}"));
        let sms = Dispatch {
            channel: TargetKind::Sms,
            target_id: Uuid::now_v7(),
            ..email.clone()
        };
        assert_ne!(sms.task_id(), email.task_id());
        assert_eq!(sms.queue(), Queue::Channels);
        let start = FanOut::start(tenant, id);
        let chunk = FanOut::chunk(tenant, id, 0, "u1".to_owned());
        assert_ne!(start.task_id(), chunk.task_id());
        assert_ne!(
            chunk.task_id(),
            FanOut::chunk(tenant, id, 0, "u2".to_owned()).task_id()
        );
        assert_ne!(
            chunk.task_id(),
            FanOut::chunk(tenant, id, 1, "u1".to_owned()).task_id()
        );
    }
}
