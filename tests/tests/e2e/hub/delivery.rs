//! The whole path the seed clients rely on, with every process real: REST create →
//! `herald-fanout` → Redis → the hub in `herald-api` → the official `@microsoft/signalr` client
//! running seed 001's code, which then fetches the notification over REST.

use std::time::Duration;

use herald_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

/// Long enough for a stray event to have arrived if it was going to.
const QUIET: Duration = Duration::from_millis(750);

#[tokio::test]
async fn a_notification_created_by_rest_arrives_as_a_message_event() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut phone = app.connect_user("alice").await;
    let mut laptop = app.connect_user("alice").await;
    let mut bob = app.connect_user("bob").await;

    let created = app
        .notify(&app.tenant, "alice", json!({ "subject": "Welcome aboard" }))
        .await;
    for client in [&mut phone, &mut laptop] {
        let event = client.expect_event().await;
        assert_eq!(event["type"], "Message");
        assert_eq!(event["id"], created["id"]);
        assert!(event.as_object().unwrap().contains_key("parentId"));
        assert_eq!(event["parentId"], Value::Null);
        let sent: chrono::DateTime<chrono::Utc> =
            event["createdAt"].as_str().unwrap().parse().unwrap();
        let made: chrono::DateTime<chrono::Utc> =
            created["createdAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(sent, made);
        // The seed's handler fetched the full notification by REST with the user's token.
        let fetched = client.expect_notification().await;
        assert_eq!(fetched["id"], created["id"]);
        assert_eq!(fetched["subject"], "Welcome aboard");
    }
    assert!(
        bob.next_event(QUIET).await.is_none(),
        "bob gets nothing of alice's"
    );
}

#[tokio::test]
async fn a_broadcast_reaches_every_connected_recipient() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut clients = Vec::new();
    for user in ["u1", "u2", "u3"] {
        clients.push(app.connect_user(user).await);
    }
    let mut outsider = app.connect_user("u4").await;
    let response = app
        .as_backend(&app.tenant, Method::POST, "Broadcasts")
        .json(&json!({ "userIds": ["u1", "u2", "u3"], "subject": "Hi all", "message": "m", "type": "SystemAnnouncement" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    for client in &mut clients {
        let event = client.expect_event().await;
        assert_eq!(event["type"], "Message");
        let fetched = client.expect_notification().await;
        assert_eq!(fetched["subject"], "Hi all");
        assert_eq!(fetched["id"], event["id"]);
    }
    assert!(outsider.next_event(QUIET).await.is_none());
}
