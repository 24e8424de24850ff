//! Chats over REST against the real `herald-api` and PostgreSQL: creating them, who may do
//! what, renaming and tenant isolation. Members and my chat list are in `members.rs`; messages,
//! history and receipts in `messages.rs` and `history.rs`.

use herald_tests::Tenant;
use herald_tests::TestApp;
use herald_tests::chat::{
    Actor, assert_field_error, count, field_errors, ids_of, metadata_of, of, str_of, users_named,
};
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_group_chat_is_created_with_its_creator_as_owner() {
    let app = TestApp::spawn().await;
    let response = app
        .as_user_of(&app.tenant, "alice", Method::POST, "Chat")
        .json(&json!({
            "type": "Group",
            "name": "Launch",
            "memberIds": ["bob", "carol"],
            "metadata": { "project": "apollo" },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let chat = json_body(response).await;
    let id = str_of(&chat, "id");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(location, format!("/tenant/{}/v1/Chat/{id}", app.tenant.id));
    assert_eq!(chat["type"], "Group");
    assert_eq!(chat["name"], "Launch");
    assert_eq!(chat["metadata"], json!({ "project": "apollo" }));
    assert_eq!(chat["createdBy"], "alice");
    assert_eq!(chat["memberCount"], 3);
    assert_eq!(chat["role"], "Owner");
    assert_eq!(chat["unreadCount"], 0);
    assert_eq!(chat["lastMessage"], Value::Null);
    for field in ["createdAt", "updatedAt", "lastActivityAt"] {
        assert!(chat[field].is_string(), "{field}: {chat}");
    }

    let tenant = app.get_chat(&Actor::Tenant, id).await;
    assert_eq!(
        (tenant["role"].clone(), tenant["unreadCount"].clone()),
        (Value::Null, json!(0))
    );
    let bob = app.token_for(&app.tenant, "bob").await;
    let seen = app.get_chat(&Actor::Token(bob), id).await;
    assert_eq!(seen["id"], id);
    assert_eq!(seen["role"], "Member");
    assert_eq!(seen["memberCount"], 3);

    let (status, members) = app
        .chat_call(
            &Actor::Tenant,
            Method::GET,
            &format!("Chat/{id}/members"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{members}");
    let roles: Vec<(&str, &str)> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (str_of(m, "userId"), str_of(m, "role")))
        .collect();
    assert_eq!(
        roles,
        [("alice", "Owner"), ("bob", "Member"), ("carol", "Member")]
    );
    assert_eq!(members["nextAfter"], Value::Null);

    // The tenant's key creates a chat nobody owns; the type defaults to Group.
    let chat = app
        .create_chat(
            &Actor::Tenant,
            json!({ "name": "Ops", "memberIds": ["x", "y"] }),
        )
        .await;
    assert_eq!(chat["type"], "Group");
    assert_eq!(chat["createdBy"], Value::Null);
    assert_eq!(chat["role"], Value::Null);
    assert_eq!(chat["memberCount"], 2);
    let path = format!("Chat/{}/members", str_of(&chat, "id"));
    let (_, members) = app
        .chat_call(&Actor::Tenant, Method::GET, &path, None)
        .await;
    assert!(
        members["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["role"] == "Member"),
        "{members}"
    );
}

#[tokio::test]
async fn a_direct_chat_between_two_users_is_created_once() {
    let app = TestApp::spawn().await;
    let first = app
        .create_chat(
            &of("alice"),
            json!({ "type": "Direct", "memberIds": ["bob"] }),
        )
        .await;
    let id = str_of(&first, "id");
    assert_eq!(first["type"], "Direct");
    assert_eq!(first["memberCount"], 2);

    let bob = Actor::Token(app.token_for(&app.tenant, "bob").await);
    let again = [
        (of("alice"), json!(["bob"])),
        (of("alice"), json!(["bob", "alice"])),
        (bob, json!(["alice"])),
        (Actor::Tenant, json!(["bob", "alice"])),
        (Actor::Tenant, json!(["alice", "bob"])),
    ];
    for (actor, members) in again {
        let (status, chat) = app
            .chat_call(
                &actor,
                Method::POST,
                "Chat",
                Some(json!({ "type": "Direct", "memberIds": members })),
            )
            .await;
        assert_eq!(status, 200, "{actor:?} {members}: {chat}");
        assert_eq!(chat["id"], id, "{actor:?} {members}");
        assert_eq!(chat["type"], "Direct");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM chats").await, 1);

    // A direct chat has exactly two distinct members.
    let invalid = [
        (of("alice"), json!(["bob", "carol"])),
        (of("alice"), json!(["alice"])),
        (Actor::Tenant, json!(["a", "b", "c"])),
        (Actor::Tenant, json!(["a"])),
    ];
    for (actor, members) in invalid {
        let (status, problem) = app
            .chat_call(
                &actor,
                Method::POST,
                "Chat",
                Some(json!({ "type": "Direct", "memberIds": members })),
            )
            .await;
        assert_eq!(status, 400, "{actor:?} {members}: {problem}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM chats").await, 1);
}

#[tokio::test]
async fn invalid_chats_and_messages_are_rejected_naming_the_field_and_create_nothing() {
    let app = TestApp::spawn().await;
    let chats = [
        (
            json!({ "name": "n".repeat(201), "memberIds": ["bob"] }),
            "name",
        ),
        (json!({ "name": "", "memberIds": ["bob"] }), "name"),
        (json!({ "memberIds": ["bob", "has space"] }), "memberIds"),
        (json!({ "memberIds": [] }), "memberIds"),
        (
            json!({ "memberIds": ["bob"], "metadata": metadata_of(33) }),
            "metadata",
        ),
        (json!({ "type": "Channel", "memberIds": ["bob"] }), "type"),
        (json!({ "memberIds": users_named("m", 1_001) }), "memberIds"),
    ];
    for (body, field) in chats {
        let (status, problem) = app
            .chat_call(&of("alice"), Method::POST, "Chat", Some(body))
            .await;
        assert_field_error(status, &problem, field);
    }
    assert_eq!(count(&app, "SELECT count(*) FROM chats").await, 0);
    let response = app
        .as_user_of(&app.tenant, "alice", Method::POST, "Chat")
        .json(&json!({ "memberIds": ["bad id!"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem = json_body(response).await;
    for field in ["type", "title", "detail", "message"] {
        assert!(problem[field].is_string(), "{field}: {problem}");
    }

    let chat = app.create_group("alice", &["bob"]).await;
    let messages = [
        (json!({ "message": "" }), "message"),
        (json!({ "message": "x".repeat(10_001) }), "message"),
        (
            json!({ "message": "hi", "contentType": "Markdown" }),
            "contentType",
        ),
        (
            json!({ "message": "hi", "metadata": metadata_of(33) }),
            "metadata",
        ),
        (
            json!({ "message": "hi", "contentType": "Html", "htmlContent": "a".repeat(100 * 1024 + 1) }),
            "htmlContent",
        ),
    ];
    let path = format!("Chat/{chat}/messages");
    for (body, field) in messages {
        let (status, problem) = app
            .chat_call(&of("alice"), Method::POST, &path, Some(body))
            .await;
        assert_field_error(status, &problem, field);
    }
    assert_eq!(count(&app, "SELECT count(*) FROM chat_messages").await, 0);

    // The limits themselves are accepted.
    let longest = app
        .send_chat_message(
            &of("alice"),
            &chat,
            json!({ "message": "x".repeat(10_000), "metadata": metadata_of(32) }),
        )
        .await;
    assert_eq!(longest["message"].as_str().unwrap().chars().count(), 10_000);
    assert_eq!(longest["metadata"].as_object().unwrap().len(), 32);
}

#[tokio::test]
async fn who_acts_is_a_user_the_key_names_or_the_tokens_own_user() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    // The key alone is the tenant, not a user: where a user is required it must name one.
    let needs_a_user = [
        (Method::GET, "Chat".to_owned(), None),
        (
            Method::POST,
            format!("Chat/{chat}/messages"),
            Some(json!({ "message": "hi" })),
        ),
        (Method::PUT, format!("Chat/{chat}/read"), Some(json!({}))),
        (
            Method::POST,
            "Chat/broadcast".to_owned(),
            Some(json!({ "userIds": ["bob"], "message": "hi" })),
        ),
    ];
    for (method, path, body) in needs_a_user {
        let (status, problem) = app
            .chat_call(&Actor::Tenant, method.clone(), &path, body)
            .await;
        assert_eq!(status, 400, "{method} {path}: {problem}");
        assert!(!field_errors(&problem, "Of-User-Id").is_empty());
    }
    assert_eq!(count(&app, "SELECT count(*) FROM chat_messages").await, 0);

    // A user's token cannot act as another user.
    let alice = app.token_for(&app.tenant, "alice").await;
    for (method, path) in [
        (Method::GET, "Chat".to_owned()),
        (Method::GET, format!("Chat/{chat}")),
        (Method::POST, format!("Chat/{chat}/messages")),
    ] {
        let response = app
            .as_user(&app.tenant, &alice, method.clone(), &path)
            .header("Of-User-Id", "bob")
            .json(&json!({ "message": "as bob" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM chat_messages").await, 0);

    // The key acting as alice, and alice's own token, are the same user.
    let sent = app.send_message(&chat, "alice", "from the backend").await;
    assert_eq!(sent["senderId"], "alice");
    let sent = app
        .send_chat_message(
            &Actor::Token(alice),
            &chat,
            json!({ "message": "from her phone" }),
        )
        .await;
    assert_eq!(sent["senderId"], "alice");
}

#[tokio::test]
async fn a_chat_is_invisible_to_non_members() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let message = app.send_message(&chat, "alice", "secret").await;
    let message = str_of(&message, "id");
    let carol_token = Actor::Token(app.token_for(&app.tenant, "carol").await);
    let unknown = uuid::Uuid::now_v7();
    for carol in [of("carol"), carol_token] {
        let calls = [
            (Method::GET, format!("Chat/{chat}"), None),
            (Method::GET, format!("Chat/{chat}/messages"), None),
            (Method::GET, format!("Chat/{chat}/members"), None),
            (Method::GET, format!("Chat/{chat}/messages/{message}"), None),
            (
                Method::GET,
                format!("Chat/{chat}/messages/{message}/info"),
                None,
            ),
            (
                Method::POST,
                format!("Chat/{chat}/messages"),
                Some(json!({ "message": "let me in" })),
            ),
            (Method::PUT, format!("Chat/{chat}/read"), Some(json!({}))),
            (
                Method::POST,
                format!("Chat/{chat}/members"),
                Some(json!({ "userIds": ["carol"] })),
            ),
            (
                Method::DELETE,
                format!("Chat/{chat}/messages/{message}"),
                None,
            ),
            (Method::DELETE, format!("Chat/{chat}"), None),
            (Method::GET, format!("Chat/{unknown}"), None),
        ];
        for (method, path, body) in calls {
            let (status, problem) = app.chat_call(&carol, method.clone(), &path, body).await;
            assert_eq!(status, 404, "{carol:?} {method} {path}: {problem}");
        }
        let (status, mine) = app.chat_call(&carol, Method::GET, "Chat", None).await;
        assert_eq!(status, 200);
        assert_eq!(mine["totalCount"], 0, "{mine}");
        assert_eq!(mine["data"], json!([]));
    }
    let history = app.chat_history(&of("bob"), &chat, "").await;
    assert_eq!(ids_of(&history), [message]);
    assert_eq!(app.get_chat(&of("alice"), &chat).await["memberCount"], 2);

    // A message is found only in its own chat, even by a member of both.
    let elsewhere = app.create_group("alice", &["carol"]).await;
    for (method, path) in [
        (Method::GET, format!("Chat/{elsewhere}/messages/{message}")),
        (
            Method::GET,
            format!("Chat/{elsewhere}/messages/{message}/info"),
        ),
        (
            Method::DELETE,
            format!("Chat/{elsewhere}/messages/{message}"),
        ),
    ] {
        let (status, body) = app
            .chat_call(&of("alice"), method.clone(), &path, None)
            .await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    assert_eq!(
        ids_of(&app.chat_history(&of("bob"), &chat, "").await),
        [message]
    );
}

#[tokio::test]
async fn owners_admins_and_the_tenant_rename_a_chat() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let path = format!("Chat/{chat}");
    let (status, _) = app
        .chat_call(
            &of("bob"),
            Method::PUT,
            &path,
            Some(json!({ "name": "Bob's" })),
        )
        .await;
    assert_eq!(status, 403, "a plain member");
    let (status, renamed) = app
        .chat_call(
            &of("alice"),
            Method::PUT,
            &path,
            Some(json!({ "name": "Renamed", "metadata": { "topic": "q3" } })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        (
            renamed["name"].as_str(),
            renamed["metadata"]["topic"].as_str()
        ),
        (Some("Renamed"), Some("q3"))
    );
    let (status, renamed) = app
        .chat_call(
            &Actor::Tenant,
            Method::PUT,
            &path,
            Some(json!({ "name": "By the backend" })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    let (status, problem) = app
        .chat_call(
            &of("alice"),
            Method::PUT,
            &path,
            Some(json!({ "name": "n".repeat(201) })),
        )
        .await;
    assert_field_error(status, &problem, "name");
    let seen = app.get_chat(&of("bob"), &chat).await;
    assert_eq!(seen["name"], "By the backend");
    assert_eq!(
        seen["metadata"]["topic"], "q3",
        "metadata left alone when not given"
    );
}

#[tokio::test]
async fn another_tenant_sees_nothing_of_a_tenants_chats() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let message = app.send_message(&chat, "alice", "ours").await;
    let message = str_of(&message, "id");
    let other = app.create_tenant("globex").await;

    // Their key (acting as a user of the same name, or as the tenant), ids guessed: 404.
    for actor in [of("alice"), Actor::Tenant] {
        for (method, path, body) in [
            (Method::GET, format!("Chat/{chat}"), None),
            (Method::GET, format!("Chat/{chat}/messages"), None),
            (Method::GET, format!("Chat/{chat}/messages/{message}"), None),
            (Method::GET, format!("Chat/{chat}/members"), None),
            (
                Method::POST,
                format!("Chat/{chat}/members"),
                Some(json!({ "userIds": ["mallory"] })),
            ),
            (
                Method::DELETE,
                format!("Chat/{chat}/messages/{message}"),
                None,
            ),
            (
                Method::DELETE,
                format!("Chat/{chat}/messages?olderThanDays=0"),
                None,
            ),
            (Method::DELETE, format!("Chat/{chat}"), None),
        ] {
            let (status, body) = app
                .chat_call_in(&other, &actor, method.clone(), &path, body)
                .await;
            assert_eq!(status, 404, "{actor:?} {method} {path}: {body}");
        }
    }
    let (status, body) = app
        .chat_call_in(
            &other,
            &of("alice"),
            Method::POST,
            &format!("Chat/{chat}/messages"),
            Some(json!({ "message": "hi" })),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, mine) = app
        .chat_call_in(&other, &of("alice"), Method::GET, "Chat", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine["totalCount"], 0, "{mine}");

    // Their credentials in our URLs: 403.
    let mallory = Tenant {
        id: app.tenant.id,
        api_key: other.api_key.clone(),
    };
    let (status, _) = app
        .chat_call_in(
            &mallory,
            &of("alice"),
            Method::GET,
            &format!("Chat/{chat}"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let their_alice = app.token_for(&other, "alice").await;
    let (status, _) = app
        .chat_call(
            &Actor::Token(their_alice),
            Method::GET,
            &format!("Chat/{chat}"),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // Nothing changed here.
    let history = app.chat_history(&of("bob"), &chat, "").await;
    assert_eq!(ids_of(&history), [message]);
    assert_eq!(app.get_chat(&Actor::Tenant, &chat).await["memberCount"], 2);
}
