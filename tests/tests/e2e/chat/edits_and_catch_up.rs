//! Editing chat messages, and chat messages replayed by the hub's catch-up (`lastEventAt`),
//! through the official SignalR client running seed 000's chat code against `herald-api`.

use std::time::Duration;

use chrono::Utc;
use herald_tests::TestApp;
use herald_tests::chat::of;
use herald_tests::signalr::{Seed, SignalRClient};
use reqwest::Method;
use serde_json::{Value, json};

/// Long enough for a stray event to have arrived if it was going to.
const QUIET: Duration = Duration::from_millis(750);

fn is_chat_message(event: &Value) -> bool {
    event["type"] == "ChatMessage"
}

#[tokio::test]
async fn only_the_sender_edits_a_message_and_members_are_told() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let message = app.send_message(&chat, "alice", "helo").await;
    let id = message["id"].as_str().unwrap().to_owned();
    let mut bob = app.connect_chat_user(&app.tenant, "bob").await;
    let path = format!("Chat/{chat}/messages/{id}");

    let (status, _) = app
        .chat_call(
            &of("bob"),
            Method::PUT,
            &path,
            Some(json!({ "message": "hacked" })),
        )
        .await;
    assert_eq!(status, 403, "another member cannot edit");
    let (status, problem) = app
        .chat_call(
            &of("alice"),
            Method::PUT,
            &path,
            Some(json!({ "message": "" })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["errors"]["message"].is_array(), "{problem}");

    let (status, edited) = app
        .chat_call(
            &of("alice"),
            Method::PUT,
            &path,
            Some(json!({ "message": "hello" })),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["message"], "hello");
    assert_eq!(edited["id"], id.as_str());
    assert!(edited["editedAt"].is_string(), "{edited}");

    let event = bob
        .expect_event_where("ChatMessageEdited", |e| e["type"] == "ChatMessageEdited")
        .await;
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["parentId"], chat.as_str());
    let (status, fetched) = app.chat_call(&of("bob"), Method::GET, &path, None).await;
    assert_eq!((status, fetched["message"].clone()), (200, json!("hello")));

    app.chat_call(&of("alice"), Method::DELETE, &path, None)
        .await;
    let (status, _) = app
        .chat_call(
            &of("alice"),
            Method::PUT,
            &path,
            Some(json!({ "message": "again" })),
        )
        .await;
    assert_eq!(status, 404, "a deleted message cannot be edited");
}

#[tokio::test]
async fn last_event_at_replays_chat_messages_sent_while_away_then_goes_live() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let other = app.create_group("alice", &["carol"]).await;
    // Seen before `since` but within the replay's overlap: it comes again, for bob to drop by id.
    let seen = app.send_message(&chat, "alice", "seen before").await["id"].clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let since = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut missed = vec![seen];
    for text in ["one", "two", "three"] {
        missed.push(app.send_message(&chat, "alice", text).await["id"].clone());
    }
    app.send_message(&other, "alice", "not bob's").await;

    let options = app
        .client_options(&app.tenant, "bob")
        .await
        .seed(Seed::Chat000)
        .last_event_at(since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let mut bob = SignalRClient::connect(options).await;
    let mut replayed = Vec::new();
    for _ in 0..missed.len() {
        let event = bob.expect_event_where("ChatMessage", is_chat_message).await;
        assert_eq!(event["parentId"], chat.as_str());
        replayed.push(event["id"].clone());
    }
    assert_eq!(
        replayed, missed,
        "the overlap's message again, then what was missed: oldest first, only bob's chats"
    );
    assert_eq!(bob.next_event_where(is_chat_message, QUIET).await, None);

    let live = app.send_message(&chat, "alice", "live").await;
    let event = bob
        .expect_event_where("live ChatMessage", is_chat_message)
        .await;
    assert_eq!(event["id"], live["id"]);
    assert_eq!(bob.next_event_where(is_chat_message, QUIET).await, None);
}
