//! The catch-up seam: a notification stamped before an event the client received, but committed
//! after it, is still replayed by `lastEventAt` — and a transaction held past the commit budget
//! is written again with fresh stamps (a job) or refused with 503 (a request) rather than
//! committed with stale ones.
//!
//! A fan-out chunk is held open from inside its transaction: the test inserts, uncommitted,
//! the inbox row the chunk is about to write, so the chunk's INSERT waits on the unique index
//! after its ids and times were stamped. Rolling the test's row back lets the chunk commit.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_shared::db::commit_window::COMMIT_BUDGET;
use herald_shared::events::{EventType, MessagingEvent};
use herald_tests::TestApp;
use herald_tests::broadcasts::{broadcast, template, wait_for_status};
use herald_tests::chat::of;
use herald_tests::process::HeraldProcess;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Long enough for a stray event to have arrived if it was going to.
const QUIET: Duration = Duration::from_millis(750);

/// A fan-out chunk to alice, stalled on the unique index after stamping its row.
struct StalledChunk {
    broadcast_id: String,
    holder: Transaction<'static, Postgres>,
    _fanout: HeraldProcess,
}

async fn stall_a_chunk_for_alice(app: &TestApp) -> StalledChunk {
    let created = broadcast(app, template(json!({ "userIds": ["alice"] }))).await;
    let broadcast_id = created["id"].as_str().unwrap().to_owned();
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO notifications (tenant_id, id, user_id, subject, message, type, priority, \
         status, created_at, broadcast_id) \
         VALUES ($1, $2, 'alice', 'held', 'held', 'SystemAnnouncement', 1, 'Sent', now(), $3::uuid)",
    )
    .bind(app.tenant.id)
    .bind(Uuid::now_v7())
    .bind(&broadcast_id)
    .execute(&mut *holder)
    .await
    .unwrap();
    let fanout = app.start("herald-fanout", &[]).await;
    wait_until_a_backend_waits_on_a_lock(app).await;
    StalledChunk {
        broadcast_id,
        holder,
        _fanout: fanout,
    }
}

async fn wait_until_a_backend_waits_on_a_lock(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO notifications%'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the chunk never reached its insert"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The broadcast's one inbox row once committed: its id and times.
async fn alice_row(app: &TestApp, broadcast_id: &str) -> (Uuid, DateTime<Utc>, DateTime<Utc>) {
    wait_for_status(app, broadcast_id, "Completed", Duration::from_secs(30)).await;
    sqlx::query_as(
        "SELECT id, created_at, sent_at FROM notifications WHERE broadcast_id = $1::uuid",
    )
    .bind(broadcast_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// A notification delivered to alice's live connection; returns its event.
async fn deliver_live(app: &TestApp) -> Value {
    let mut client = app.connect_user("alice").await;
    let notification = app
        .notify(&app.tenant, "alice", json!({ "subject": "later" }))
        .await;
    let id: Uuid = notification["id"].as_str().unwrap().parse().unwrap();
    app.mark_sent(&[id]).await;
    let created_at = notification["createdAt"].as_str().unwrap().parse().unwrap();
    app.publish(
        &app.tenant,
        "alice",
        vec![MessagingEvent::notification(
            EventType::Message,
            id,
            created_at,
        )],
    )
    .await;
    let event = client.expect_event().await;
    assert_eq!(event["id"], notification["id"]);
    client.kill().await;
    event
}

/// Every `Message` id a client connecting with `lastEventAt` receives.
async fn replayed_after(app: &TestApp, last_event_at: &str) -> Vec<String> {
    let options = app
        .client_options(&app.tenant, "alice")
        .await
        .last_event_at(last_event_at);
    let mut client = herald_tests::signalr::SignalRClient::connect(options).await;
    let mut ids = Vec::new();
    while let Some(event) = client.next_event(QUIET).await {
        assert_eq!(event["type"], "Message", "{event}");
        ids.push(event["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn a_notification_committed_after_a_later_one_was_delivered_is_replayed() {
    let app = TestApp::spawn().await;
    let stalled = stall_a_chunk_for_alice(&app).await;
    // Delivered while the chunk's older-stamped row is still uncommitted; the client leaves.
    let later = deliver_live(&app).await;
    stalled.holder.rollback().await.unwrap();
    let (held, created_at, sent_at) = alice_row(&app, &stalled.broadcast_id).await;
    let last_event_at: DateTime<Utc> = later["createdAt"].as_str().unwrap().parse().unwrap();
    assert!(
        created_at < last_event_at && sent_at < last_event_at,
        "the held row is stamped before the delivered event (the seam this test is about)"
    );

    let replayed = replayed_after(&app, later["createdAt"].as_str().unwrap()).await;
    assert!(
        replayed.contains(&held.to_string()),
        "the late commit is replayed: {replayed:?}"
    );
    assert_eq!(
        replayed
            .iter()
            .filter(|id| **id == held.to_string())
            .count(),
        1,
        "once"
    );
}

#[tokio::test]
async fn a_chunk_held_past_the_commit_budget_is_written_again_with_fresh_stamps() {
    let app = TestApp::spawn().await;
    let stalled = stall_a_chunk_for_alice(&app).await;
    tokio::time::sleep(COMMIT_BUDGET + Duration::from_secs(1)).await;
    let released = Utc::now();
    stalled.holder.rollback().await.unwrap();
    let (_, created_at, sent_at) = alice_row(&app, &stalled.broadcast_id).await;
    // The first attempt stamped its row before the hold began; only a retry stamps after it.
    let budget = chrono::Duration::from_std(COMMIT_BUDGET).unwrap();
    assert!(
        created_at > released - budget && sent_at > released - budget,
        "committed with stamps from before the hold: created {created_at}, sent {sent_at}, released {released}"
    );
}

#[tokio::test]
async fn a_chat_message_held_past_the_commit_budget_gets_503_and_is_not_stored() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    // The message's statement also moves the chat's last activity: hold the chat's row.
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM chats WHERE id = $1::uuid FOR UPDATE")
        .bind(&chat)
        .execute(&mut *holder)
        .await
        .unwrap();
    let request = app
        .as_actor(
            &app.tenant,
            &of("alice"),
            Method::POST,
            &format!("Chat/{chat}/messages"),
        )
        .json(&json!({ "message": "held" }))
        .send();
    let release = async {
        tokio::time::sleep(COMMIT_BUDGET + Duration::from_secs(1)).await;
        holder.rollback().await.unwrap();
    };
    let (response, ()) = tokio::join!(request, release);
    let response = response.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let problem = json_body(response).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was stored"),
        "{problem}"
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE chat_id = $1::uuid")
            .bind(&chat)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);
    // The retry a client makes is stored.
    app.send_message(&chat, "alice", "held").await;
}
