//! Hostile content and chat bounds against the real `herald-api`: HTML that makes the parser or
//! text renderer blow up is refused (or stored small) off the async threads, end users cannot
//! broadcast chat messages, and members' chat HTML loses its images unless the tenant allows
//! them.

use std::time::Duration;

use futures::future::join_all;
use herald_tests::TestApp;
use herald_tests::chat::{Actor, assert_field_error, count, field_errors, of, str_of};
use herald_tests::hostile_html::{hostile_bodies, reopened_bold};
use reqwest::{Client, Method};
use serde_json::{Value, json};

/// Largest sanitized HTML Herald stores (documented in docs/content.md).
const SANITIZED_MAX_BYTES: usize = 256 * 1024;
/// Generous: on today's code one 16 KB body took 36 s; bounded code answers in milliseconds.
const SLOW: Duration = Duration::from_secs(90);

/// Either a 400 naming `htmlContent`, or a stored body under the output cap.
fn assert_refused_or_small(label: &str, status: u16, body: &Value) {
    if status == 400 {
        assert!(
            !field_errors(body, "htmlContent").is_empty(),
            "{label}: {body}"
        );
        return;
    }
    assert_eq!(status, 201, "{label}: {body}");
    let html = str_of(body, "htmlContent");
    assert!(
        html.len() <= SANITIZED_MAX_BYTES,
        "{label}: stored {} bytes",
        html.len()
    );
    assert!(str_of(body, "message").chars().count() <= 10_000, "{label}");
}

async fn post_notification(app: &TestApp, html: &str) -> (u16, Value) {
    let response = app
        .as_backend(&app.tenant, Method::POST, "Notifications")
        .timeout(SLOW)
        .json(&json!({ "userId": "alice", "subject": "Hostile", "type": "SystemAnnouncement", "htmlContent": html }))
        .send()
        .await
        .expect("the notification request answers");
    herald_tests::audience::status_and_body(response).await
}

#[tokio::test]
async fn html_that_would_blow_up_the_parser_is_refused_or_stored_small() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    for (label, html) in hostile_bodies() {
        let (status, body) = post_notification(&app, &html).await;
        assert_refused_or_small(&format!("notification, {label}"), status, &body);
        let response = app
            .as_user_of(
                &app.tenant,
                "alice",
                Method::POST,
                &format!("Chat/{chat}/messages"),
            )
            .timeout(SLOW)
            .json(&json!({ "contentType": "Html", "htmlContent": html }))
            .send()
            .await
            .expect("the chat request answers");
        let (status, body) = herald_tests::audience::status_and_body(response).await;
        assert_refused_or_small(&format!("chat message, {label}"), status, &body);
    }
    // The refusal says what is wrong with the markup, not just that it is wrong.
    let (status, problem) = post_notification(&app, &reopened_bold(16 * 1024)).await;
    assert_field_error(status, &problem, "htmlContent");
    let reason = field_errors(&problem, "htmlContent").join(" ");
    assert!(reason.contains("formatting elements"), "{reason}");
    // Ordinary HTML still works, its text rendering standing in for the message.
    let (status, stored) = post_notification(
        &app,
        "<p>Hello <b>there</b><img src=\"https://cdn.example/logo.png\"></p>",
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["message"], "Hello there");
    assert!(
        str_of(&stored, "htmlContent").contains("<img"),
        "notifications keep images"
    );
}

#[tokio::test]
async fn healthz_answers_while_twenty_hostile_bodies_are_in_flight() {
    let app = TestApp::spawn().await;
    let bodies = hostile_bodies();
    let hostile = (0..20).map(|n| {
        let html = bodies[n % bodies.len()].1.clone();
        let app = &app;
        async move { post_notification(app, &html).await }
    });
    let healthz = async {
        // A fresh client: the probe must not queue behind the hostile requests' connections.
        let client = Client::new();
        let url = format!("{}/healthz", app.base_url());
        let mut answered = 0;
        for _ in 0..20 {
            let response = client
                .get(&url)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("/healthz answers while hostile bodies are being checked");
            assert_eq!(response.status(), 200);
            answered += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered
    };
    let (results, answered) = tokio::join!(join_all(hostile), healthz);
    assert_eq!(answered, 20);
    for (status, body) in results {
        assert_refused_or_small("in flight", status, &body);
    }
}

#[tokio::test]
async fn a_user_token_cannot_send_a_chat_broadcast() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "mallory").await;
    let made_up: Vec<String> = (0..500).map(|n| format!("nobody-{n}")).collect();
    let (status, problem) = app
        .chat_call(
            &Actor::Token(token),
            Method::POST,
            "Chat/broadcast",
            Some(json!({ "userIds": made_up, "message": "hi" })),
        )
        .await;
    assert_eq!(status, 403, "{problem}");
    for table in ["chat_broadcasts", "chats", "chat_members", "chat_messages"] {
        assert_eq!(
            count(&app, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    // The tenant's backend still can, naming the sender.
    let (status, broadcast) = app
        .chat_call(
            &of("mallory"),
            Method::POST,
            "Chat/broadcast",
            Some(json!({ "userIds": ["bob"], "message": "hi" })),
        )
        .await;
    assert_eq!(status, 202, "{broadcast}");
}

#[tokio::test]
async fn members_chat_images_are_removed_unless_the_tenant_allows_them() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let pixel = "<p>look<img src=\"https://tracker.example/p.gif?u=alice\"></p>";
    let send = |actor: Actor| {
        let path = format!("Chat/{chat}/messages");
        let app = &app;
        async move {
            let body = json!({ "contentType": "Html", "htmlContent": pixel });
            let (status, sent) = app.chat_call(&actor, Method::POST, &path, Some(body)).await;
            assert_eq!(status, 201, "{sent}");
            sent
        }
    };
    let alice = Actor::Token(app.token_for(&app.tenant, "alice").await);
    for actor in [alice.clone(), of("alice")] {
        let sent = send(actor).await;
        assert_eq!(sent["htmlContent"], "<p>look</p>", "{sent}");
    }
    // Edits too.
    let sent = send(alice.clone()).await;
    let path = format!("Chat/{chat}/messages/{}", str_of(&sent, "id"));
    let edit = json!({ "contentType": "Html", "htmlContent": pixel });
    let (status, edited) = app
        .chat_call(&alice, Method::PUT, &path, Some(edit.clone()))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["htmlContent"], "<p>look</p>", "{edited}");

    // The setting is the tenant backend's.
    let (status, settings) = app
        .chat_call(&Actor::Tenant, Method::GET, "Settings/chat", None)
        .await;
    assert_eq!((status, settings), (200, json!({ "remoteImages": false })));
    let allow = json!({ "remoteImages": true });
    let (status, _) = app
        .chat_call(&alice, Method::PUT, "Settings/chat", Some(allow.clone()))
        .await;
    assert_eq!(status, 401, "a user token cannot change tenant settings");
    let (status, problem) = app
        .chat_call(
            &Actor::Tenant,
            Method::PUT,
            "Settings/chat",
            Some(json!({})),
        )
        .await;
    assert_field_error(status, &problem, "remoteImages");
    let (status, problem) = app
        .chat_call(
            &Actor::Tenant,
            Method::PUT,
            "Settings/chat",
            Some(json!({ "remoteImages": "yes" })),
        )
        .await;
    assert_field_error(status, &problem, "remoteImages");
    let (status, settings) = app
        .chat_call(
            &Actor::Tenant,
            Method::PUT,
            "Settings/chat",
            Some(allow.clone()),
        )
        .await;
    assert_eq!((status, settings), (200, allow.clone()));
    let (_, settings) = app
        .chat_call(&Actor::Tenant, Method::GET, "Settings/chat", None)
        .await;
    assert_eq!(settings, allow);

    let sent = send(alice.clone()).await;
    assert!(str_of(&sent, "htmlContent").contains("<img"), "{sent}");
    let (_, edited) = app.chat_call(&alice, Method::PUT, &path, Some(edit)).await;
    assert!(str_of(&edited, "htmlContent").contains("<img"), "{edited}");

    // Another tenant keeps the default.
    let other = app.create_tenant("other").await;
    let (status, settings) = app
        .chat_call_in(&other, &Actor::Tenant, Method::GET, "Settings/chat", None)
        .await;
    assert_eq!((status, settings), (200, json!({ "remoteImages": false })));
}
