//! Chat in real time, with every process real: REST → `herald-api` (and `herald-fanout` for
//! chat broadcasts) → Redis → the hub → the official `@microsoft/signalr` client running seed
//! 000's Quick Start code, whose handler then fetches `Chat/{parentId}/messages/{id}` over REST.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::chat::{Actor, of};
use herald_tests::signalr::SignalRClient;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};

/// Long enough for a stray event to have arrived if it was going to.
const QUIET: Duration = Duration::from_millis(1_000);

/// An event of `kind` about `id` in chat `chat`.
fn is(kind: &'static str, id: &str, chat: &str) -> impl Fn(&Value) -> bool {
    let (id, chat) = (id.to_owned(), chat.to_owned());
    move |event| {
        event["type"] == kind && event["id"] == id.as_str() && event["parentId"] == chat.as_str()
    }
}

async fn expect(
    client: &mut SignalRClient,
    who: &str,
    kind: &'static str,
    id: &str,
    chat: &str,
) -> Value {
    client
        .expect_event_where(&format!("{who}: {kind} {id} in {chat}"), is(kind, id, chat))
        .await
}

/// Waits for the seed's own fetch of message `id` in `chat` after its event; returns
/// `(status, body)`.
async fn seed_fetch(client: &mut SignalRClient, chat: &str, id: &str) -> (u64, Value) {
    let mut line = client
        .expect_fetched(&format!("/Chat/{chat}/messages/{id}"))
        .await;
    (
        line["status"].as_u64().expect("status"),
        line["body"].take(),
    )
}

#[tokio::test]
async fn chat_events_reach_every_members_devices_and_only_theirs() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let other = app.create_tenant("globex").await;
    let tenant = app.tenant.clone();
    let (a_phone, a_laptop, b, c, d, outsider) = tokio::join!(
        app.connect_chat_user(&tenant, "alice"),
        app.connect_chat_user(&tenant, "alice"),
        app.connect_chat_user(&tenant, "bob"),
        app.connect_chat_user(&tenant, "carol"),
        app.connect_chat_user(&tenant, "dave"),
        // The same user id in another tenant.
        app.connect_chat_user(&other, "bob"),
    );
    let (mut a_phone, mut a_laptop, mut b, mut c, mut d, mut outsider) =
        (a_phone, a_laptop, b, c, d, outsider);

    // A new chat: each member hears of their own membership.
    let chat = app.create_group("alice", &["bob", "carol"]).await;
    for (client, who) in [
        (&mut a_phone, "alice"),
        (&mut a_laptop, "alice"),
        (&mut b, "bob"),
        (&mut c, "carol"),
    ] {
        expect(client, who, "ChatMemberAdded", who, &chat).await;
    }

    // Alice sends from her phone's app (REST): everyone, her laptop included, gets the event,
    // and seed 000's handler fetches exactly that message.
    let alice = Actor::Token(app.token_for(&app.tenant, "alice").await);
    let hello = app
        .send_chat_message(&alice, &chat, json!({ "message": "hello team" }))
        .await;
    let hello_id = hello["id"].as_str().unwrap().to_owned();
    for (client, who) in [
        (&mut a_phone, "alice"),
        (&mut a_laptop, "alice"),
        (&mut b, "bob"),
        (&mut c, "carol"),
    ] {
        let event = expect(client, who, "ChatMessage", &hello_id, &chat).await;
        let sent: chrono::DateTime<chrono::Utc> =
            event["createdAt"].as_str().unwrap().parse().unwrap();
        let made: chrono::DateTime<chrono::Utc> =
            hello["createdAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(sent, made, "{who}");
        let (status, message) = seed_fetch(client, &chat, &hello_id).await;
        assert_eq!(status, 200, "{who}: {message}");
        assert_eq!(message["id"], hello_id.as_str());
        assert_eq!(message["chatId"], chat.as_str());
        assert_eq!(message["message"], "hello team");
        assert_eq!(message["senderId"], "alice");
    }

    // Each seed client's fetch delivered the message to its user.
    let path = format!("Chat/{chat}/messages/{hello_id}/info");
    let (status, info) = app.chat_call(&of("alice"), Method::GET, &path, None).await;
    assert_eq!(status, 200, "{info}");
    let mut statuses: Vec<(&str, &str)> = info["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["userId"].as_str().unwrap(), m["status"].as_str().unwrap()))
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [("bob", "Delivered"), ("carol", "Delivered")]);

    // Bob reads: every member hears of it.
    app.mark_read("bob", &chat, json!({ "upToMessageId": hello_id }))
        .await;
    for (client, who) in [
        (&mut a_phone, "alice"),
        (&mut a_laptop, "alice"),
        (&mut b, "bob"),
        (&mut c, "carol"),
    ] {
        expect(client, who, "ChatRead", &hello_id, &chat).await;
    }

    // Dave is added: everyone, dave included, hears of it.
    let (status, added) = app
        .chat_call(
            &of("alice"),
            Method::POST,
            &format!("Chat/{chat}/members"),
            Some(json!({ "userIds": ["dave"] })),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    for (client, who) in [
        (&mut a_phone, "alice"),
        (&mut a_laptop, "alice"),
        (&mut b, "bob"),
        (&mut c, "carol"),
        (&mut d, "dave"),
    ] {
        expect(client, who, "ChatMemberAdded", "dave", &chat).await;
    }

    // Carol is removed: she and the others hear of it, and then she hears nothing more.
    let status = app
        .chat_call(
            &of("alice"),
            Method::DELETE,
            &format!("Chat/{chat}/members/carol"),
            None,
        )
        .await
        .0;
    assert_eq!(status, 204);
    for (client, who) in [
        (&mut c, "carol"),
        (&mut a_phone, "alice"),
        (&mut b, "bob"),
        (&mut d, "dave"),
    ] {
        expect(client, who, "ChatMemberRemoved", "carol", &chat).await;
    }
    let after = app.send_message(&chat, "alice", "without carol").await;
    let after_id = after["id"].as_str().unwrap().to_owned();
    for (client, who) in [(&mut b, "bob"), (&mut d, "dave"), (&mut a_laptop, "alice")] {
        expect(client, who, "ChatMessage", &after_id, &chat).await;
        let (status, message) = seed_fetch(client, &chat, &after_id).await;
        assert_eq!(
            (status, message["message"].clone()),
            (200, json!("without carol")),
            "{who}"
        );
    }
    let stray = c
        .next_event_where(|e| e["type"] == "ChatMessage", QUIET)
        .await;
    assert!(stray.is_none(), "carol got {stray:?} after leaving");
    for path in [
        format!("Chat/{chat}"),
        format!("Chat/{chat}/messages/{after_id}"),
    ] {
        let (status, _) = app.chat_call(&of("carol"), Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}");
    }

    // The message is deleted: the members hear of it; the seed's fetch now finds nothing.
    let status = app
        .chat_call(
            &of("alice"),
            Method::DELETE,
            &format!("Chat/{chat}/messages/{after_id}"),
            None,
        )
        .await
        .0;
    assert_eq!(status, 204);
    for (client, who) in [
        (&mut a_phone, "alice"),
        (&mut a_laptop, "alice"),
        (&mut b, "bob"),
        (&mut d, "dave"),
    ] {
        expect(client, who, "ChatMessageDeleted", &after_id, &chat).await;
    }
    let (status, _) = seed_fetch(&mut b, &chat, &after_id).await;
    assert_eq!(status, 404, "the seed's fetch of a deleted message");
    let stray = c
        .next_event_where(
            |e| {
                e["parentId"] == chat.as_str()
                    && (e["type"] == "ChatMessage" || e["type"] == "ChatMessageDeleted")
            },
            QUIET,
        )
        .await;
    assert!(stray.is_none(), "carol got {stray:?} after leaving");

    // The chat is deleted: each remaining member hears of their own removal.
    let status = app
        .chat_call(&of("alice"), Method::DELETE, &format!("Chat/{chat}"), None)
        .await
        .0;
    assert_eq!(status, 204);
    for (client, who) in [
        (&mut a_phone, "alice"),
        (&mut a_laptop, "alice"),
        (&mut b, "bob"),
        (&mut d, "dave"),
    ] {
        expect(client, who, "ChatMemberRemoved", who, &chat).await;
    }

    // Another tenant's user of the same name heard nothing at all.
    assert_eq!(outsider.next_event(QUIET).await, None);
}

#[tokio::test]
async fn a_chat_broadcast_to_two_thousand_users_gives_each_one_message_in_their_direct_chat() {
    let app = TestApp::spawn().await;
    let _fanout = app
        .start("herald-fanout", &[("HERALD_FANOUT_CHUNK_SIZE", "500")])
        .await;
    let users: Vec<String> = (0..2_000).map(|i| format!("user-{i:05}")).collect();
    let mut recipient = app.connect_chat_user(&app.tenant, "user-01234").await;
    let post = || {
        app.as_user_of(&app.tenant, "sender", Method::POST, "Chat/broadcast")
            .header("Idempotency-Key", "launch-announcement")
            .json(&json!({ "userIds": users, "message": "We have launched!" }))
            .send()
    };

    let response = post().await.unwrap();
    assert_eq!(response.status(), 202);
    let created = json_body(response).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["totalTargets"], 2_000, "{created}");
    assert!(
        matches!(
            created["status"].as_str(),
            Some("Queued" | "Sending" | "Completed")
        ),
        "{created}"
    );
    let done = app
        .wait_for_chat_broadcast("sender", &id, Duration::from_secs(120))
        .await;
    assert_eq!(
        (done["sent"].as_i64(), done["totalTargets"].as_i64()),
        (Some(2_000), Some(2_000)),
        "{done}"
    );
    assert!(done["completedAt"].is_string(), "{done}");

    let rows = |app: &TestApp| {
        let (id, users) = (id.clone(), users.clone());
        let pool = app.pool.clone();
        async move {
            // One row per (message, non-sender member): a direct chat with one other member each.
            let row: (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT count(*), count(DISTINCT cm.chat_id), count(DISTINCT m.user_id), \
                        count(*) FILTER (WHERE c.type = 'Direct' AND m.user_id = ANY($2)) \
                 FROM chat_messages cm \
                 JOIN chats c ON c.tenant_id = cm.tenant_id AND c.id = cm.chat_id \
                 JOIN chat_members m ON m.tenant_id = cm.tenant_id AND m.chat_id = cm.chat_id \
                      AND m.user_id <> 'sender' \
                 WHERE cm.broadcast_id = $1::uuid",
            )
            .bind(id)
            .bind(users)
            .fetch_one(&pool)
            .await
            .unwrap();
            row
        }
    };
    assert_eq!(rows(&app).await, (2_000, 2_000, 2_000, 2_000));
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE broadcast_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(messages, 2_000);

    // The connected recipient got exactly one message, in its direct chat with the sender.
    let is_message = |e: &Value| e["type"] == "ChatMessage";
    let event = recipient
        .expect_event_where("user-01234: the broadcast's ChatMessage", is_message)
        .await;
    let chat = event["parentId"].as_str().unwrap().to_owned();
    let (status, message) = seed_fetch(&mut recipient, &chat, event["id"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["message"], "We have launched!");
    assert_eq!(message["senderId"], "sender");
    let direct = app.get_chat(&of("user-01234"), &chat).await;
    assert_eq!(
        (direct["type"].as_str(), direct["memberCount"].as_i64()),
        (Some("Direct"), Some(2))
    );

    // The same request again, with the same key, is the same broadcast.
    let again = post().await.unwrap();
    assert_eq!(again.status(), 202);
    let again = json_body(again).await;
    assert_eq!(again["id"], id.as_str(), "{again}");
    let done = app
        .wait_for_chat_broadcast("sender", &id, Duration::from_secs(60))
        .await;
    assert_eq!(done["sent"], 2_000);
    assert_eq!(rows(&app).await, (2_000, 2_000, 2_000, 2_000));
    let stray = recipient.next_event_where(is_message, QUIET).await;
    assert!(stray.is_none(), "a second ChatMessage: {stray:?}");
}
