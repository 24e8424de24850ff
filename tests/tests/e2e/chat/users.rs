//! Erasing and renaming a user (`Notifications/users/…`) covers their chat data too.

use herald_tests::TestApp;
use herald_tests::chat::of;
use reqwest::Method;
use serde_json::{Value, json};

async fn direct_chat(app: &TestApp, user: &str, peer: &str) -> (u16, Value) {
    app.chat_call(
        &of(user),
        Method::POST,
        "Chat",
        Some(json!({ "type": "Direct", "memberIds": [peer] })),
    )
    .await
}

async fn member_ids(app: &TestApp, chat: &str) -> Vec<String> {
    let (status, page) = app
        .chat_call(
            &herald_tests::chat::Actor::Tenant,
            Method::GET,
            &format!("Chat/{chat}/members"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn erasing_a_user_removes_their_messages_memberships_and_direct_chats() {
    let app = TestApp::spawn().await;
    let group = app.create_group("alice", &["bob", "carol"]).await;
    app.send_message(&group, "alice", "from alice").await;
    let kept = app.send_message(&group, "bob", "from bob").await;
    let (_, direct) = direct_chat(&app, "alice", "bob").await;
    let direct = direct["id"].as_str().unwrap().to_owned();

    let (status, erased) = app
        .backend_call(
            &app.tenant,
            Method::DELETE,
            "Notifications/users/alice",
            None,
        )
        .await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["deleted"]["chatMessages"], 1);
    assert_eq!(
        erased["deleted"]["chatMemberships"], 2,
        "the group and the direct chat"
    );

    assert_eq!(member_ids(&app, &group).await, ["bob", "carol"]);
    let history = app.chat_history(&of("bob"), &group, "").await;
    let ids: Vec<&Value> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&kept["id"]], "only alice's messages go");
    let (status, _) = app
        .chat_call(&of("bob"), Method::GET, &format!("Chat/{direct}"), None)
        .await;
    assert_eq!(
        status, 404,
        "a direct chat with an erased user goes with them"
    );
    let (status, chat) = app
        .chat_call(&of("bob"), Method::GET, &format!("Chat/{group}"), None)
        .await;
    assert_eq!((status, chat["createdBy"].clone()), (200, Value::Null));
}

#[tokio::test]
async fn renaming_a_user_moves_their_chats_messages_and_direct_chat_pairs() {
    let app = TestApp::spawn().await;
    let group = app.create_group("temp-7", &["bob"]).await;
    let sent = app.send_message(&group, "temp-7", "hi").await;
    let (_, direct) = direct_chat(&app, "bob", "temp-7").await;

    let (status, renamed) = app
        .backend_call(
            &app.tenant,
            Method::PUT,
            "Notifications/users/temp-7/update-id",
            Some(json!({ "newUserId": "alice" })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["updated"]["chatMemberships"], 2);
    assert_eq!(renamed["updated"]["chatMessages"], 1);

    assert_eq!(member_ids(&app, &group).await, ["alice", "bob"]);
    let (status, message) = app
        .chat_call(
            &of("alice"),
            Method::GET,
            &format!("Chat/{group}/messages/{}", sent["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((status, message["senderId"].clone()), (200, json!("alice")));
    let (status, again) = direct_chat(&app, "bob", "alice").await;
    assert_eq!(
        status, 200,
        "the direct chat is now bob and alice's: {again}"
    );
    assert_eq!(again["id"], direct["id"]);
    let (status, _) = direct_chat(&app, "bob", "temp-7").await;
    assert_eq!(status, 201, "temp-7 is a new user again");

    let (status, problem) = app
        .backend_call(
            &app.tenant,
            Method::PUT,
            "Notifications/users/bob/update-id",
            Some(json!({ "newUserId": "alice" })),
        )
        .await;
    assert_eq!(status, 409, "alice has chat data now: {problem}");
}
