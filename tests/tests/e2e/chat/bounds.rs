//! Bounds on what one chat user can make Herald do: group size (`HERALD_CHAT_MAX_MEMBERS`),
//! membership events that grow with the members rather than members × added, and paged message
//! info.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::chat::{assert_field_error, count, of, str_of};
use reqwest::Method;
use serde_json::{Value, json};

/// Long enough for a stray event to have arrived if it was going to.
const QUIET: Duration = Duration::from_millis(1_000);

#[tokio::test]
async fn a_group_cannot_grow_past_the_member_limit() {
    let app = TestApp::spawn_with(&[("HERALD_CHAT_MAX_MEMBERS", "5")]).await;
    let (status, problem) = app
        .chat_call(
            &of("alice"),
            Method::POST,
            "Chat",
            Some(json!({ "name": "big", "memberIds": ["b", "c", "d", "e", "f"] })),
        )
        .await;
    assert_field_error(status, &problem, "memberIds");
    assert_eq!(count(&app, "SELECT count(*) FROM chats").await, 0);

    let chat = app.create_group("alice", &["b", "c"]).await;
    let members = format!("Chat/{chat}/members");
    let alice = of("alice");
    let add = |ids: Value| {
        app.chat_call(
            &alice,
            Method::POST,
            &members,
            Some(json!({ "userIds": ids })),
        )
    };
    // Three more would make six: refused whole, nothing added.
    let (status, problem) = add(json!(["d", "e", "f"])).await;
    assert_field_error(status, &problem, "userIds");
    let in_chat = format!("SELECT count(*) FROM chat_members WHERE chat_id = '{chat}'");
    assert_eq!(count(&app, &in_chat).await, 3);
    // Existing members do not count as new: b and c again plus two new make exactly five.
    let (status, added) = add(json!(["b", "c", "d", "e"])).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(
        (added["added"].as_i64(), added["alreadyMembers"].as_i64()),
        (Some(2), Some(2))
    );
    let (status, problem) = add(json!(["f"])).await;
    assert_field_error(status, &problem, "userIds");
    assert_eq!(count(&app, &in_chat).await, 5);
}

#[tokio::test]
async fn adding_many_members_sends_one_event_per_member() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let mut bob = app.connect_chat_user(&app.tenant, "bob").await;
    let mut dave = app.connect_chat_user(&app.tenant, "dave").await;

    let (status, added) = app
        .chat_call(
            &of("alice"),
            Method::POST,
            &format!("Chat/{chat}/members"),
            Some(json!({ "userIds": ["carol", "dave", "erin"] })),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    // Existing members hear once that the list changed, not once per new member.
    let changed = bob
        .expect_event_where("bob: ChatMembersChanged", |e| {
            e["type"] == "ChatMembersChanged"
        })
        .await;
    assert_eq!(
        (changed["id"].as_str(), changed["parentId"].as_str()),
        (Some(chat.as_str()), Some(chat.as_str()))
    );
    // A new member hears of their own membership only.
    let mine = dave
        .expect_event_where("dave: ChatMemberAdded", |e| e["type"] == "ChatMemberAdded")
        .await;
    assert_eq!(mine["id"], "dave");
    for (client, who) in [(&mut bob, "bob"), (&mut dave, "dave")] {
        let stray = client
            .next_event_where(|e| str_of(e, "type").starts_with("ChatMember"), QUIET)
            .await;
        assert!(
            stray.is_none(),
            "{who} got another membership event: {stray:?}"
        );
    }
}

#[tokio::test]
async fn message_info_lists_members_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let others = ["m1", "m2", "m3", "m4", "m5"];
    let chat = app.create_group("alice", &others).await;
    let message = app.send_message(&chat, "alice", "hello").await;
    let info = format!("Chat/{chat}/messages/{}/info", str_of(&message, "id"));

    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("{info}?pageSize=2{after}");
        let (status, page) = app.chat_call(&of("alice"), Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let members = page["members"].as_array().unwrap();
        assert!(members.len() <= 2, "{page}");
        seen.extend(members.iter().map(|m| str_of(m, "userId").to_owned()));
        match page["nextAfter"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, others);
    let (status, page) = app.chat_call(&of("alice"), Method::GET, &info, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        page["members"].as_array().unwrap().len(),
        5,
        "default page holds them all"
    );
    assert!(page["nextAfter"].is_null());
    let (status, problem) = app
        .chat_call(
            &of("alice"),
            Method::GET,
            &format!("{info}?pageSize=1001"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{problem}");
}
