//! Chat messages over REST against the real `herald-api` and PostgreSQL: receipts and unread
//! counts, deletion, sanitizing, idempotency and small chat broadcasts.

use std::collections::BTreeSet;

use herald_tests::TestApp;
use herald_tests::chat::{
    Actor, assert_field_error, count, ids_of, of, receipt, send_many, str_of, unread, users_named,
};
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn unread_counts_and_receipts_follow_what_each_member_fetched_and_read() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob", "carol"]).await;
    let mut sent = Vec::new();
    for i in 1..=3 {
        let message = app.send_message(&chat, "alice", &format!("m{i}")).await;
        sent.push(str_of(&message, "id").to_owned());
        assert_eq!(unread(&app, "bob", &chat).await, i);
    }
    let (m1, m2, m3) = (&sent[0], &sent[1], &sent[2]);

    let path = format!("Chat/{chat}/messages/{m3}/info");
    let (status, info) = app.chat_call(&of("alice"), Method::GET, &path, None).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        (info["messageId"].as_str(), info["chatId"].as_str()),
        (Some(m3.as_str()), Some(chat.as_str()))
    );
    assert_eq!(info["senderId"], "alice");
    let members: BTreeSet<&str> = info["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| str_of(m, "userId"))
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["bob", "carol"]),
        "the sender is not listed"
    );
    for user in ["bob", "carol"] {
        let entry = receipt(&app, &chat, m3, user).await;
        assert_eq!(entry["status"], "Sent", "{entry}");
        assert_eq!(
            (entry["deliveredAt"].clone(), entry["readAt"].clone()),
            (Value::Null, Value::Null)
        );
    }

    // Fetching history delivers; reading reads.
    let history = app.chat_history(&of("bob"), &chat, "").await;
    assert_eq!(ids_of(&history), [m3.as_str(), m2.as_str(), m1.as_str()]);
    let entry = receipt(&app, &chat, m3, "bob").await;
    assert_eq!(entry["status"], "Delivered", "{entry}");
    assert!(
        entry["deliveredAt"].is_string() && entry["readAt"].is_null(),
        "{entry}"
    );
    assert_eq!(receipt(&app, &chat, m3, "carol").await["status"], "Sent");
    assert_eq!(unread(&app, "bob", &chat).await, 3, "delivered is not read");

    let read = app
        .mark_read("bob", &chat, json!({ "upToMessageId": m3 }))
        .await;
    assert_eq!(
        read,
        json!({ "chatId": chat, "lastReadMessageId": m3, "unreadCount": 0 })
    );
    assert_eq!(unread(&app, "bob", &chat).await, 0);
    let entry = receipt(&app, &chat, m3, "bob").await;
    assert_eq!(entry["status"], "Read", "{entry}");
    assert!(
        entry["readAt"].is_string() && entry["deliveredAt"].is_string(),
        "{entry}"
    );

    // Carol reads only up to m1, without fetching: read implies delivered.
    let read = app
        .mark_read("carol", &chat, json!({ "upToMessageId": m1 }))
        .await;
    assert_eq!(
        (
            read["lastReadMessageId"].as_str(),
            read["unreadCount"].as_i64()
        ),
        (Some(m1.as_str()), Some(2))
    );
    assert_eq!(unread(&app, "carol", &chat).await, 2);
    let entry = receipt(&app, &chat, m1, "carol").await;
    assert_eq!(entry["status"], "Read", "{entry}");
    assert!(entry["deliveredAt"].is_string(), "{entry}");
    assert_eq!(receipt(&app, &chat, m3, "carol").await["status"], "Sent");

    // Receipts never move backwards.
    let read = app
        .mark_read("bob", &chat, json!({ "upToMessageId": m1 }))
        .await;
    assert_eq!(
        (
            read["lastReadMessageId"].as_str(),
            read["unreadCount"].as_i64()
        ),
        (Some(m3.as_str()), Some(0))
    );
    assert_eq!(receipt(&app, &chat, m3, "bob").await["status"], "Read");
    app.chat_history(&of("carol"), &chat, &format!("after={m1}"))
        .await;
    assert_eq!(
        receipt(&app, &chat, m3, "carol").await["status"],
        "Delivered"
    );
    app.chat_history(&of("carol"), &chat, &format!("before={m2}"))
        .await;
    assert_eq!(
        receipt(&app, &chat, m3, "carol").await["status"],
        "Delivered",
        "fetching older messages undelivers nothing"
    );
    let (_, members) = app
        .chat_call(
            &Actor::Tenant,
            Method::GET,
            &format!("Chat/{chat}/members"),
            None,
        )
        .await;
    let bob = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["userId"] == "bob")
        .unwrap();
    assert_eq!(bob["lastReadMessageId"], m3.as_str());
    assert_eq!(bob["lastDeliveredMessageId"], m3.as_str());

    // New messages count again; a member's own messages never do; fetching one delivers it.
    let m4 = app.send_message(&chat, "alice", "m4").await;
    let m4 = str_of(&m4, "id");
    app.send_message(&chat, "bob", "bob's own").await;
    assert_eq!(unread(&app, "bob", &chat).await, 1);
    assert_eq!(unread(&app, "carol", &chat).await, 4);
    assert_eq!(receipt(&app, &chat, m4, "bob").await["status"], "Sent");
    let (status, fetched) = app
        .chat_call(
            &of("bob"),
            Method::GET,
            &format!("Chat/{chat}/messages/{m4}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["message"], "m4");
    assert_eq!(receipt(&app, &chat, m4, "bob").await["status"], "Delivered");
}

#[tokio::test]
async fn messages_are_deleted_by_their_sender_an_owner_or_the_tenant() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob", "carol"]).await;
    let ids = send_many(&app, &chat, "bob", "b", 3).await;
    let (b1, b2, b3) = (&ids[0], &ids[1], &ids[2]);
    let delete = |actor: Actor, id: &str| {
        let path = format!("Chat/{chat}/messages/{id}");
        let app = &app;
        async move { app.chat_call(&actor, Method::DELETE, &path, None).await.0 }
    };
    assert_eq!(
        app.get_chat(&of("carol"), &chat).await["lastMessage"]["id"],
        b3.as_str()
    );
    assert_eq!(unread(&app, "carol", &chat).await, 3);

    assert_eq!(delete(of("carol"), b3).await, 403, "another member");
    assert_eq!(delete(of("bob"), b3).await, 204, "the sender");
    let (status, _) = app
        .chat_call(
            &of("carol"),
            Method::GET,
            &format!("Chat/{chat}/messages/{b3}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        ids_of(&app.chat_history(&of("carol"), &chat, "").await),
        [b2.as_str(), b1.as_str()]
    );
    let seen = app.get_chat(&of("carol"), &chat).await;
    assert_eq!(seen["lastMessage"]["id"], b2.as_str(), "{seen}");
    assert_eq!(seen["unreadCount"], 2, "deleted messages are not unread");

    assert_eq!(delete(of("alice"), b2).await, 204, "the owner");
    assert_eq!(delete(Actor::Tenant, b1).await, 204, "the tenant");
    assert_eq!(delete(of("bob"), b1).await, 404, "already deleted");
    let history = app.chat_history(&of("carol"), &chat, "").await;
    assert_eq!(ids_of(&history), Vec::<String>::new());
    let seen = app.get_chat(&of("carol"), &chat).await;
    assert_eq!(seen["lastMessage"], Value::Null, "{seen}");
    assert_eq!(seen["unreadCount"], 0);
}

#[tokio::test]
async fn html_messages_are_sanitized() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let sent = app
        .send_chat_message(
            &of("alice"),
            &chat,
            json!({
                "message": "Hello there",
                "contentType": "Html",
                "htmlContent": "<p>Hello <b>there</b></p><script>alert('xss')</script><a href=\"https://example.com\" onclick=\"steal()\">link</a>",
            }),
        )
        .await;
    let html = str_of(&sent, "htmlContent");
    assert!(html.contains("<b>there</b>"), "{html}");
    assert!(html.contains("https://example.com"), "{html}");
    for evil in ["<script", "alert(", "onclick", "steal()"] {
        assert!(!html.contains(evil), "{evil} kept in {html}");
    }
    assert_eq!(sent["contentType"], "Html");
    assert_eq!(sent["message"], "Hello there");
    let (_, fetched) = app
        .chat_call(
            &of("bob"),
            Method::GET,
            &format!("Chat/{chat}/messages/{}", str_of(&sent, "id")),
            None,
        )
        .await;
    assert_eq!(fetched["htmlContent"], sent["htmlContent"]);

    // Html without htmlContent: the message is the HTML; the text is derived from it.
    let sent = app
        .send_chat_message(
            &of("alice"),
            &chat,
            json!({ "message": "<p>Hi <i>you</i><script>evil()</script></p>", "contentType": "Html" }),
        )
        .await;
    let html = str_of(&sent, "htmlContent");
    assert!(
        html.contains("<i>you</i>") && !html.contains("<script") && !html.contains("evil()"),
        "{html}"
    );
    let text = str_of(&sent, "message");
    assert!(text.contains("Hi") && text.contains("you"), "{text}");
    assert!(!text.contains('<') && !text.contains("evil()"), "{text}");

    // Plain text stays plain text.
    let sent = app
        .send_message(&chat, "alice", "1 < 2 & <b>not bold</b>")
        .await;
    assert_eq!(sent["message"], "1 < 2 & <b>not bold</b>");
    assert_eq!(sent["htmlContent"], Value::Null);
    assert_eq!(sent["contentType"], "Text");
}

#[tokio::test]
async fn a_message_sent_again_with_the_same_idempotency_key_is_stored_once() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let send = |key: &'static str| {
        app.as_user_of(
            &app.tenant,
            "alice",
            Method::POST,
            &format!("Chat/{chat}/messages"),
        )
        .header("Idempotency-Key", key)
        .json(&json!({ "message": "once" }))
        .send()
    };
    let first = send("key-1").await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let first = json_body(first).await;
    let id = str_of(&first, "id");
    assert_eq!(
        location,
        format!("/tenant/{}/v1/Chat/{chat}/messages/{id}", app.tenant.id)
    );

    let again = send("key-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(again).await, first);
    assert_eq!(ids_of(&app.chat_history(&of("bob"), &chat, "").await), [id]);

    let other = json_body(send("key-2").await.unwrap()).await;
    assert_ne!(other["id"], first["id"]);
    assert_eq!(count(&app, "SELECT count(*) FROM chat_messages").await, 2);
}

#[tokio::test]
async fn a_small_chat_broadcast_completes_before_the_response() {
    let app = TestApp::spawn().await;
    let group = app.create_group("sam", &["g1", "g2"]).await;
    let existing = app
        .create_chat(&of("sam"), json!({ "type": "Direct", "memberIds": ["u1"] }))
        .await;
    let existing = str_of(&existing, "id");

    let response = app
        .as_user_of(&app.tenant, "sam", Method::POST, "Chat/broadcast")
        .json(&json!({ "userIds": ["u1", "u2", "u3"], "chatIds": [group], "message": "Hello all" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let broadcast = json_body(response).await;
    let id = str_of(&broadcast, "id");
    assert_eq!(
        location,
        format!("/tenant/{}/v1/Chat/broadcast/{id}", app.tenant.id)
    );
    assert_eq!(broadcast["status"], "Completed", "{broadcast}");
    assert_eq!(
        (
            broadcast["totalTargets"].as_i64(),
            broadcast["sent"].as_i64()
        ),
        (Some(4), Some(4))
    );
    assert!(broadcast["completedAt"].is_string() && broadcast["createdAt"].is_string());
    let (status, again) = app
        .chat_call(
            &of("sam"),
            Method::GET,
            &format!("Chat/broadcast/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (again["status"].as_str(), again["sent"].as_i64()),
        (Some("Completed"), Some(4))
    );

    // u1's existing direct chat got it; u2 and u3 got a new one with sam; the group got it.
    let u1 = app.get_chat(&of("u1"), existing).await;
    assert_eq!(u1["lastMessage"]["message"], "Hello all");
    assert_eq!(u1["lastMessage"]["senderId"], "sam");
    for user in ["u1", "u2", "u3"] {
        let (_, mine) = app.chat_call(&of(user), Method::GET, "Chat", None).await;
        assert_eq!(mine["totalCount"], 1, "{user}: {mine}");
        let chat = &mine["data"][0];
        assert_eq!(chat["type"], "Direct");
        assert_eq!(chat["memberCount"], 2);
        assert_eq!(chat["lastMessage"]["message"], "Hello all");
        assert_eq!(chat["unreadCount"], 1);
    }
    for member in ["g1", "g2"] {
        let history = app.chat_history(&of(member), &group, "").await;
        assert_eq!(history["data"].as_array().unwrap().len(), 1);
        assert_eq!(history["data"][0]["message"], "Hello all");
    }
    let (messages, chats): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT chat_id) FROM chat_messages WHERE broadcast_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((messages, chats), (4, 4));

    // Every group must be one of the sender's; there must be someone to send to.
    let foreign = app.create_group("zed", &["g1"]).await;
    for (body, field) in [
        (json!({ "chatIds": [foreign], "message": "hi" }), "chatIds"),
        (json!({ "userIds": ["u1"], "message": "" }), "message"),
        (
            json!({ "userIds": ["bad id!"], "message": "hi" }),
            "userIds",
        ),
    ] {
        let (status, problem) = app
            .chat_call(&of("sam"), Method::POST, "Chat/broadcast", Some(body))
            .await;
        assert_field_error(status, &problem, field);
    }
    let (status, problem) = app
        .chat_call(
            &of("sam"),
            Method::POST,
            "Chat/broadcast",
            Some(json!({ "message": "to nobody" })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = app
        .chat_call(
            &of("sam"),
            Method::POST,
            "Chat/broadcast",
            Some(json!({ "userIds": users_named("u", 10_001), "message": "hi" })),
        )
        .await;
    assert_field_error(status, &problem, "userIds");
    assert_eq!(count(&app, "SELECT count(*) FROM chat_broadcasts").await, 1);

    // The same request under the same Idempotency-Key is the same broadcast.
    let post = || {
        app.as_user_of(&app.tenant, "sam", Method::POST, "Chat/broadcast")
            .header("Idempotency-Key", "weekly-digest")
            .json(&json!({ "userIds": ["u1", "u4"], "message": "Digest" }))
            .send()
    };
    let first = json_body(post().await.unwrap()).await;
    let again = post().await.unwrap();
    assert_eq!(again.status(), 202);
    let again = json_body(again).await;
    assert_eq!(again["id"], first["id"], "{again}");
    let digests: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE message = 'Digest'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(digests, 2);
    assert_eq!(count(&app, "SELECT count(*) FROM chat_broadcasts").await, 2);
}

#[tokio::test]
async fn reading_without_a_message_id_reads_up_to_the_newest() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let ids = send_many(&app, &chat, "alice", "m", 3).await;
    assert_eq!(unread(&app, "bob", &chat).await, 3);
    let read = app.mark_read("bob", &chat, json!({})).await;
    assert_eq!(
        read,
        json!({ "chatId": chat, "lastReadMessageId": ids[2], "unreadCount": 0 })
    );
    assert_eq!(unread(&app, "bob", &chat).await, 0);
    assert_eq!(receipt(&app, &chat, &ids[2], "bob").await["status"], "Read");
}
