//! Who is connected to this node: each user's channel with its live connections, and which
//! channels the node must be subscribed to on Redis.
//!
//! A channel is subscribed when its user's first connection arrives and unsubscribed when the
//! last one leaves. The registry decides; the pub/sub task ([`super::pubsub`]) carries the
//! decisions out in order. Each entry has a generation so a confirmation that arrives after the
//! user left and came back cannot mark the new entry subscribed before its own SUBSCRIBE ran.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{mpsc, oneshot};

use super::outbox::Outbox;

/// A change to the node's Redis subscriptions, applied in the order it was decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Subscribe { channel: Arc<str>, generation: u64 },
    Unsubscribe { channel: Arc<str> },
}

pub struct Registry {
    users: Mutex<Users>,
    commands: mpsc::UnboundedSender<Command>,
    generations: AtomicU64,
    /// Events one connection may have waiting (`HERALD_HUB_MAX_QUEUED_EVENTS`).
    outbox_capacity: usize,
}

#[derive(Default)]
struct Users {
    by_channel: HashMap<Arc<str>, UserEntry>,
    /// The node is stopping: every connection, including any that joins now, must end.
    shutting_down: bool,
    /// Connections that were live when the Redis subscription dropped: they may have missed
    /// events, and are told to reconnect once the node is subscribed again.
    missed_events: Vec<Weak<Outbox>>,
}

struct UserEntry {
    generation: u64,
    subscribed: bool,
    /// Connections waiting for the subscription to be confirmed.
    waiters: Vec<oneshot::Sender<()>>,
    connections: Vec<Arc<Outbox>>,
}

/// A connection's place in the registry; leaving is dropping it.
pub struct Membership {
    registry: Arc<Registry>,
    channel: Arc<str>,
    outbox: Arc<Outbox>,
}

impl Membership {
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.registry.leave(&self.channel, &self.outbox);
    }
}

/// Resolves once the user's channel is subscribed on Redis (already true for all but the
/// first connection of a user). Fails only when the node is shutting down.
pub type Subscribed = oneshot::Receiver<()>;

impl Registry {
    pub fn new(outbox_capacity: usize) -> (Arc<Self>, mpsc::UnboundedReceiver<Command>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let registry = Self {
            users: Mutex::default(),
            commands,
            generations: AtomicU64::new(1),
            outbox_capacity,
        };
        (Arc::new(registry), receiver)
    }

    /// Adds a connection of the user whose channel is `channel`.
    pub fn join(self: &Arc<Self>, channel: &str) -> (Membership, Option<Subscribed>) {
        self.join_within(channel, usize::MAX)
            .expect("no connection limit")
    }

    /// Adds a connection unless the user already has `limit` on this node (`None`); the
    /// check and the join happen under one lock, so simultaneous connects cannot exceed it.
    pub fn join_within(
        self: &Arc<Self>,
        channel: &str,
        limit: usize,
    ) -> Option<(Membership, Option<Subscribed>)> {
        let outbox = Arc::new(Outbox::default());
        let mut users = self.lock();
        if users
            .by_channel
            .get(channel)
            .is_some_and(|entry| entry.connections.len() >= limit)
        {
            return None;
        }
        if users.shutting_down {
            outbox.shut_down();
        }
        let users = &mut users.by_channel;
        let channel = match users.get_key_value(channel) {
            Some((key, _)) => key.clone(),
            None => {
                let channel: Arc<str> = Arc::from(channel);
                let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                users.insert(
                    channel.clone(),
                    UserEntry {
                        generation,
                        subscribed: false,
                        waiters: Vec::new(),
                        // Most users have one connection on a node.
                        connections: Vec::with_capacity(1),
                    },
                );
                self.send(Command::Subscribe {
                    channel: channel.clone(),
                    generation,
                });
                channel
            }
        };
        let entry = users.get_mut(&channel).expect("present or inserted above");
        entry.connections.push(outbox.clone());
        let waiter = (!entry.subscribed).then(|| {
            let (sender, receiver) = oneshot::channel();
            entry.waiters.push(sender);
            receiver
        });
        let membership = Membership {
            registry: self.clone(),
            channel,
            outbox,
        };
        Some((membership, waiter))
    }

    /// Open connections of the channel's user on this node.
    pub fn connections_of(&self, channel: &str) -> usize {
        self.lock()
            .by_channel
            .get(channel)
            .map_or(0, |entry| entry.connections.len())
    }

    fn leave(&self, channel: &Arc<str>, outbox: &Arc<Outbox>) {
        let mut guard = self.lock();
        let users = &mut guard.by_channel;
        let Some(entry) = users.get_mut(channel) else {
            return;
        };
        entry
            .connections
            .retain(|other| !Arc::ptr_eq(other, outbox));
        if entry.connections.is_empty() {
            users.remove(channel);
            self.send(Command::Unsubscribe {
                channel: channel.clone(),
            });
        }
    }

    /// Queues an event record on every connection of the channel's user; returns how many.
    pub fn deliver(&self, channel: &str, record: &Arc<str>) -> usize {
        let users = self.lock();
        let Some(entry) = users.by_channel.get(channel) else {
            return 0;
        };
        for outbox in &entry.connections {
            if !outbox.push(record.clone(), self.outbox_capacity) {
                tracing::debug!(channel, "a connection fell behind and is being dropped");
            }
        }
        entry.connections.len()
    }

    /// Marks channels subscribed (those whose generation still matches) and wakes the
    /// connections waiting for it.
    pub fn confirm(&self, subscribed: &[(Arc<str>, u64)]) {
        let mut users = self.lock();
        for (channel, generation) in subscribed {
            if let Some(entry) = users.by_channel.get_mut(channel)
                && entry.generation == *generation
            {
                entry.subscribed = true;
                for waiter in entry.waiters.drain(..) {
                    let _ = waiter.send(());
                }
                entry.waiters = Vec::new();
            }
        }
    }

    /// The Redis subscription dropped: until it is back, no channel counts as subscribed (a
    /// new connection waits in its handshake), and the connections live now are remembered.
    pub fn subscriptions_lost(&self) {
        let mut guard = self.lock();
        let users = &mut *guard;
        for entry in users.by_channel.values_mut() {
            if std::mem::take(&mut entry.subscribed) {
                users
                    .missed_events
                    .extend(entry.connections.iter().map(Arc::downgrade));
            }
        }
    }

    /// Subscribed again: every connection that was live across the gap is closed with
    /// `allowReconnect`, so its client reconnects and replays what it missed (`lastEventAt`).
    /// Returns how many.
    pub fn subscriptions_restored(&self) -> usize {
        let missed = std::mem::take(&mut self.lock().missed_events);
        let mut closed = 0;
        for outbox in missed.iter().filter_map(Weak::upgrade) {
            outbox.lost_events();
            closed += 1;
        }
        closed
    }

    /// Every channel with its generation: what a new Redis connection must subscribe to.
    pub fn channels(&self) -> Vec<(Arc<str>, u64)> {
        self.lock()
            .by_channel
            .iter()
            .map(|(channel, entry)| (channel.clone(), entry.generation))
            .collect()
    }

    /// Users with at least one connection on this node.
    pub fn user_count(&self) -> usize {
        self.lock().by_channel.len()
    }

    /// Ends every connection, present and future, with a goodbye that lets clients reconnect
    /// to another node.
    pub fn shut_down(&self) {
        let mut users = self.lock();
        users.shutting_down = true;
        for entry in users.by_channel.values() {
            for outbox in &entry.connections {
                outbox.shut_down();
            }
        }
    }

    /// Calls `check` on every connection of the node, under the registry's lock (the check
    /// must be quick): the expiry sweep's walk.
    pub fn for_each_connection(&self, mut check: impl FnMut(&Outbox)) {
        let users = self.lock();
        for entry in users.by_channel.values() {
            entry.connections.iter().for_each(|outbox| check(outbox));
        }
    }

    fn send(&self, command: Command) {
        // The receiver lives as long as the process (the pub/sub task); if it is gone the node
        // is stopping and nothing needs subscribing.
        let _ = self.commands.send(command);
    }

    fn lock(&self) -> MutexGuard<'_, Users> {
        // No critical section can panic; recover rather than poison every connection.
        self.users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(receiver: &mut mpsc::UnboundedReceiver<Command>) -> Vec<Command> {
        std::iter::from_fn(|| receiver.try_recv().ok()).collect()
    }

    fn subscribe(channel: &str, generation: u64) -> Command {
        Command::Subscribe {
            channel: channel.into(),
            generation,
        }
    }

    #[test]
    fn the_first_connection_subscribes_and_the_last_unsubscribes() {
        let (registry, mut commands) = Registry::new(8);
        let (first, first_waiter) = registry.join("u:alice");
        let (second, second_waiter) = registry.join("u:alice");
        assert_eq!(drain(&mut commands), vec![subscribe("u:alice", 1)]);
        assert!(first_waiter.is_some() && second_waiter.is_some());
        assert_eq!(registry.user_count(), 1);
        drop(first);
        assert!(drain(&mut commands).is_empty(), "alice is still connected");
        drop(second);
        assert_eq!(
            drain(&mut commands),
            vec![Command::Unsubscribe {
                channel: "u:alice".into()
            }]
        );
        assert_eq!(registry.user_count(), 0);
    }

    #[tokio::test]
    async fn confirmation_wakes_waiters_and_later_connections_need_not_wait() {
        let (registry, _commands) = Registry::new(8);
        let (_first, waiter) = registry.join("u:alice");
        registry.confirm(&[("u:alice".into(), 1)]);
        waiter.unwrap().await.expect("confirmed");
        let (_second, waiter) = registry.join("u:alice");
        assert!(waiter.is_none());
    }

    #[test]
    fn a_stale_confirmation_does_not_mark_a_new_entry_subscribed() {
        let (registry, mut commands) = Registry::new(8);
        let (first, _) = registry.join("u:alice");
        drop(first);
        let (_again, mut waiter) = registry.join("u:alice");
        let issued = drain(&mut commands);
        assert_eq!(issued.last(), Some(&subscribe("u:alice", 2)));
        registry.confirm(&[("u:alice".into(), 1)]);
        assert!(
            waiter.as_mut().unwrap().try_recv().is_err(),
            "still waiting"
        );
        registry.confirm(&[("u:alice".into(), 2)]);
        assert!(waiter.unwrap().try_recv().is_ok());
    }

    #[tokio::test]
    async fn events_reach_every_connection_of_the_user_only() {
        let (registry, _commands) = Registry::new(8);
        let (alice_phone, _) = registry.join("u:alice");
        let (alice_laptop, _) = registry.join("u:alice");
        let (bob, _) = registry.join("u:bob");
        let record: Arc<str> = Arc::from("event");
        assert_eq!(registry.deliver("u:alice", &record), 2);
        assert_eq!(registry.deliver("u:carol", &record), 0);
        assert_eq!(alice_phone.outbox().queued(), 1);
        assert_eq!(alice_laptop.outbox().queued(), 1);
        assert_eq!(bob.outbox().queued(), 0);
    }

    #[tokio::test]
    async fn shutting_down_ends_current_and_later_connections() {
        let (registry, _commands) = Registry::new(8);
        let (present, _) = registry.join("u:alice");
        registry.shut_down();
        let (late, _) = registry.join("u:bob");
        for membership in [&present, &late] {
            let delivery = membership.outbox().take(&mut Vec::new(), 8, true).await;
            assert_eq!(delivery, super::super::outbox::Delivery::ShuttingDown);
        }
    }

    #[test]
    fn a_user_at_the_limit_cannot_join_until_a_connection_leaves() {
        let (registry, _commands) = Registry::new(8);
        let first = registry.join_within("u:alice", 2).expect("first");
        let _second = registry.join_within("u:alice", 2).expect("second");
        assert!(registry.join_within("u:alice", 2).is_none());
        assert!(registry.join_within("u:bob", 2).is_some(), "per user");
        assert_eq!(registry.connections_of("u:alice"), 2);
        drop(first);
        assert!(registry.join_within("u:alice", 2).is_some());
    }

    #[tokio::test]
    async fn connections_live_when_the_subscription_dropped_are_told_to_reconnect() {
        let (registry, _commands) = Registry::new(8);
        let (live, _) = registry.join("u:alice");
        registry.confirm(&[("u:alice".into(), 1)]);
        let (waiting, _) = registry.join("u:bob");
        registry.subscriptions_lost();
        let (_during, waiter) = registry.join("u:alice");
        assert!(
            waiter.is_some(),
            "a connection during the gap waits for the subscription"
        );
        registry.confirm(&[("u:alice".into(), 1), ("u:bob".into(), 2)]);
        assert_eq!(registry.subscriptions_restored(), 1);
        let delivery = live.outbox().take(&mut Vec::new(), 8, true).await;
        assert_eq!(delivery, super::super::outbox::Delivery::EventsLost);
        assert_eq!(waiting.outbox().queued(), 0);
        assert_eq!(registry.subscriptions_restored(), 0, "told once");
    }

    #[test]
    fn every_current_channel_is_listed_for_resubscription() {
        let (registry, _commands) = Registry::new(8);
        let (_a, _) = registry.join("u:alice");
        let (_b, _) = registry.join("u:bob");
        let mut channels: Vec<String> = registry
            .channels()
            .into_iter()
            .map(|(channel, _)| channel.to_string())
            .collect();
        channels.sort();
        assert_eq!(channels, vec!["u:alice", "u:bob"]);
    }
}
