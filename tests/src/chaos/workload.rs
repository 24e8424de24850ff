//! The mixed workload: notifications (some scheduled, some emailed to flaky, rejecting and
//! stalling recipients), broadcasts of 10,000 recipients (immediate and scheduled) and chat
//! messages, sent while the faults happen. What Herald accepted goes into the [`Ledger`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use super::backend::{Backend, Call};

/// The hub users' ids (`h000`…): the 200 README clients connect as them.
pub fn hub_users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("h{i:03}")).collect()
}

/// Users with an inbox but no hub client.
fn plain_user(i: usize) -> String {
    format!("p{:03}", i % 500)
}

/// How a notification's email recipient answers (tests/smtp/server.py decides by local part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mailbox {
    Ok,
    Flaky,
    Reject,
    Stall,
}

impl Mailbox {
    fn local_part(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Flaky => "flaky",
            Self::Reject => "reject",
            Self::Stall => "stall",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AcceptedNotification {
    pub id: Uuid,
    pub user_id: String,
    pub subject: String,
    pub mailbox: Option<Mailbox>,
}

#[derive(Clone, Debug)]
pub struct AcceptedBroadcast {
    pub id: Uuid,
    pub audience: Vec<String>,
}

#[derive(Default)]
pub struct Ledger {
    pub notifications: Vec<AcceptedNotification>,
    pub broadcasts: Vec<AcceptedBroadcast>,
    /// (chat id, its members other than the sender)
    pub chats: Vec<(Uuid, Vec<String>)>,
    /// (chat id, message id)
    pub chat_messages: Vec<(Uuid, Uuid)>,
    /// Chat messages that got no answer (not retried: a chat message has no idempotency key).
    pub chat_unanswered: u64,
    /// Requests a backend gave up on after retrying until its deadline.
    pub abandoned: u64,
}

pub struct Plan {
    pub seed: u64,
    pub hub_users: Vec<String>,
    /// Users in each broadcast's audience besides the hub users (10,000 in all).
    pub broadcast_size: usize,
    pub notification_senders: usize,
    pub notification_interval: Duration,
    pub broadcast_interval: Duration,
    pub chat_interval: Duration,
}

/// The bot that sends every chat message (never a hub user, so each member's expected events
/// are the same whether or not a sender sees its own messages).
const CHAT_BOT: &str = "chat-bot";

/// Creates the chats (the hub users in groups of 50 with the bot).
pub async fn prepare(backend: &Backend, plan: &Plan, ledger: &Mutex<Ledger>) {
    for members in plan.hub_users.chunks(50) {
        let body = json!({ "name": "chaos", "memberIds": members });
        let Some((status, chat)) = backend
            .send(Call::post("Chat", &body).of_user(CHAT_BOT))
            .await
        else {
            panic!("cannot create a chat before any fault");
        };
        assert!(status < 300, "create chat: {status} {chat}");
        let id = chat["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("chat id");
        ledger
            .lock()
            .expect("ledger")
            .chats
            .push((id, members.to_vec()));
    }
}

/// Runs every sender until `until`.
pub async fn run(
    backend: Arc<Backend>,
    plan: Arc<Plan>,
    ledger: Arc<Mutex<Ledger>>,
    until: Instant,
) {
    let mut tasks = Vec::new();
    for sender in 0..plan.notification_senders {
        tasks.push(tokio::spawn(notifications(
            backend.clone(),
            plan.clone(),
            ledger.clone(),
            until,
            sender,
        )));
    }
    tasks.push(tokio::spawn(broadcasts(
        backend.clone(),
        plan.clone(),
        ledger.clone(),
        until,
    )));
    tasks.push(tokio::spawn(chat(backend, plan, ledger, until)));
    for task in tasks {
        task.await.expect("workload task");
    }
}

async fn notifications(
    backend: Arc<Backend>,
    plan: Arc<Plan>,
    ledger: Arc<Mutex<Ledger>>,
    until: Instant,
    sender: usize,
) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ (sender as u64 + 1));
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        let key = format!("chaos-{}-n{sender}-{n}", plan.seed);
        let user_id = if rng.random_bool(0.7) {
            plan.hub_users[rng.random_range(0..plan.hub_users.len())].clone()
        } else {
            plain_user(rng.random_range(0..500))
        };
        let mailbox = rng
            .random_bool(0.25)
            .then(|| match rng.random_range(0..20) {
                0..=10 => Mailbox::Ok,
                11..=14 => Mailbox::Flaky,
                15..=17 => Mailbox::Reject,
                _ => Mailbox::Stall,
            });
        let subject = format!("chaos {key}");
        let mut body = json!({
            "userId": user_id,
            "subject": subject,
            "message": "A notification sent while faults happen.",
            "type": "SystemAnnouncement",
            "metadata": { "chaosKey": key },
        });
        if let Some(mailbox) = mailbox {
            body["email"] = json!(format!("{}-{key}@chaos.test", mailbox.local_part()));
        }
        if rng.random_bool(0.15) {
            let due = Utc::now() + chrono::Duration::seconds(rng.random_range(3..15));
            body["scheduledFor"] = json!(due);
        }
        match backend
            .send(Call::post("Notifications", &body).key(&key))
            .await
        {
            Some((status, created)) if status < 300 => {
                let id = created["id"].as_str().and_then(|id| id.parse().ok());
                let mut ledger = ledger.lock().expect("ledger");
                match id {
                    Some(id) => ledger.notifications.push(AcceptedNotification {
                        id,
                        user_id,
                        subject,
                        mailbox,
                    }),
                    None => ledger.abandoned += 1,
                }
            }
            Some(_) => {}
            None => ledger.lock().expect("ledger").abandoned += 1,
        }
        tokio::time::sleep(plan.notification_interval).await;
    }
}

async fn broadcasts(
    backend: Arc<Backend>,
    plan: Arc<Plan>,
    ledger: Arc<Mutex<Ledger>>,
    until: Instant,
) {
    let mut n = 0u32;
    tokio::time::sleep(Duration::from_secs(3)).await;
    while Instant::now() < until {
        n += 1;
        let key = format!("chaos-{}-b{n}", plan.seed);
        let mut audience = plan.hub_users.clone();
        audience
            .extend((0..plan.broadcast_size - plan.hub_users.len()).map(|i| format!("b{i:05}")));
        let mut body = json!({
            "userIds": audience,
            "subject": format!("chaos {key}"),
            "message": "A broadcast sent while faults happen.",
            "type": "SystemAnnouncement",
            "metadata": { "chaosKey": key },
        });
        // Every second broadcast is scheduled, so the scheduler's claim is under fault too.
        if n.is_multiple_of(2) {
            body["scheduledFor"] = json!(Utc::now() + chrono::Duration::seconds(8));
        }
        match backend
            .send(Call::post("Broadcasts", &body).key(&key))
            .await
        {
            Some((status, created)) if status < 300 => {
                let id = created["id"].as_str().and_then(|id| id.parse().ok());
                let mut ledger = ledger.lock().expect("ledger");
                match id {
                    Some(id) => ledger.broadcasts.push(AcceptedBroadcast { id, audience }),
                    None => ledger.abandoned += 1,
                }
            }
            Some(_) => {}
            None => ledger.lock().expect("ledger").abandoned += 1,
        }
        tokio::time::sleep(plan.broadcast_interval).await;
    }
}

async fn chat(backend: Arc<Backend>, plan: Arc<Plan>, ledger: Arc<Mutex<Ledger>>, until: Instant) {
    let chats: Vec<Uuid> = ledger
        .lock()
        .expect("ledger")
        .chats
        .iter()
        .map(|c| c.0)
        .collect();
    let mut n = 0usize;
    while Instant::now() < until && !chats.is_empty() {
        let chat_id = chats[n % chats.len()];
        n += 1;
        let body: Value = json!({ "message": format!("chaos message {n}") });
        let path = format!("Chat/{chat_id}/messages");
        let call = Call::post(&path, &body).of_user(CHAT_BOT).no_retry();
        match backend.send(call).await {
            Some((status, sent)) if status < 300 => {
                if let Some(id) = sent["id"].as_str().and_then(|id| id.parse().ok()) {
                    ledger
                        .lock()
                        .expect("ledger")
                        .chat_messages
                        .push((chat_id, id));
                }
            }
            Some(_) => {}
            None => ledger.lock().expect("ledger").chat_unanswered += 1,
        }
        tokio::time::sleep(plan.chat_interval).await;
    }
}
