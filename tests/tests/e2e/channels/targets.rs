//! `Users/{userId}/targets`: registering where a user is reached, against the real `herald-api`.

use herald_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

// A subscription key pair from RFC 8291's example.
pub const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
pub const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

async fn register(app: &TestApp, user: &str, body: Value) -> (u16, Value) {
    app.backend_call(
        &app.tenant,
        Method::POST,
        &format!("Users/{user}/targets"),
        Some(body),
    )
    .await
}

async fn list(app: &TestApp, user: &str) -> Vec<Value> {
    let (status, body) = app
        .backend_call(
            &app.tenant,
            Method::GET,
            &format!("Users/{user}/targets"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn subscription(endpoint: &str) -> Value {
    json!({
        "type": "webPush",
        "subscription": { "endpoint": endpoint, "expirationTime": null, "keys": { "p256dh": P256DH, "auth": AUTH } }
    })
}

#[tokio::test]
async fn every_kind_of_target_is_registered_once_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let bodies = [
        json!({ "type": "email", "address": "alice.work@example.com" }),
        json!({ "type": "sms", "address": "+14155550123" }),
        json!({ "type": "webhook", "address": "http://127.0.0.1:9/hooks/alice" }),
        subscription("http://127.0.0.1:9/push/alice-laptop"),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        let (status, target) = register(&app, "alice", body.clone()).await;
        assert_eq!(status, 201, "{target}");
        assert_eq!(target["type"], body["type"]);
        assert!(target["createdAt"].is_string());
        ids.push(target["id"].as_str().unwrap().to_owned());
    }
    let (_, push) = register(&app, "alice", bodies[3].clone()).await;
    assert!(
        push.get("address").is_none_or(Value::is_null),
        "a push endpoint is not shown: {push}"
    );

    // The same address again is the same target.
    let (status, again) = register(&app, "alice", bodies[1].clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], ids[1].as_str());

    let listed = list(&app, "alice").await;
    let listed_ids: Vec<&str> = listed.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(
        listed_ids,
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(listed[0]["address"], "alice.work@example.com");
    assert!(list(&app, "bob").await.is_empty());

    let path = format!("Users/alice/targets/{}", ids[0]);
    let (status, _) = app
        .backend_call(&app.tenant, Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 204);
    let (status, problem) = app
        .backend_call(&app.tenant, Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 404, "{problem}");
    // Another user's target is not this user's to delete.
    let path = format!("Users/bob/targets/{}", ids[1]);
    let (status, _) = app
        .backend_call(&app.tenant, Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(list(&app, "alice").await.len(), 3);
}

#[tokio::test]
async fn a_browser_registers_its_own_push_subscription_with_a_user_token_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let response = app
        .as_user(&app.tenant, &token, Method::POST, "Users/alice/targets")
        .json(&subscription("http://127.0.0.1:9/push/alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = app
        .as_user(&app.tenant, &token, Method::POST, "Users/bob/targets")
        .json(&subscription("http://127.0.0.1:9/push/bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .as_user(&app.tenant, &token, Method::GET, "Users/bob/targets")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(list(&app, "bob").await.is_empty());

    // Re-subscribing (the browser renewed its keys) keeps the target.
    let renewed = json!({
        "type": "webPush",
        "subscription": { "endpoint": "http://127.0.0.1:9/push/alice", "keys": {
            "p256dh": "BLMbF9ffKBiWQLCKvTHb6LO8Nb6dcUh6TItC455vu2kElga6PQvUmaFyCdykxY2nOSSL3yKgfbmFLRTUaGv4yV8",
            "auth": AUTH } }
    });
    let (status, _) = register(&app, "alice", renewed).await;
    assert_eq!(status, 200);
    let stored: String =
        sqlx::query_scalar("SELECT push_p256dh FROM targets WHERE user_id = 'alice'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("BLMbF9"));
}

#[tokio::test]
async fn malformed_targets_get_400_naming_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({ "type": "webPush", "subscription": { "endpoint": "http://127.0.0.1:9/p", "keys": { "p256dh": "AAAA", "auth": AUTH } } }),
            "subscription.keys.p256dh",
        ),
        (
            json!({ "type": "webPush", "subscription": { "endpoint": "http://127.0.0.1:9/p", "keys": { "p256dh": P256DH, "auth": "!!" } } }),
            "subscription.keys.auth",
        ),
        (
            json!({ "type": "webPush", "subscription": { "endpoint": "javascript:alert(1)", "keys": { "p256dh": P256DH, "auth": AUTH } } }),
            "subscription.endpoint",
        ),
        (json!({ "type": "webPush", "address": "x" }), "subscription"),
        (json!({ "type": "sms", "address": "4155550123" }), "address"),
        (
            json!({ "type": "sms", "address": "+1 415 555 0123" }),
            "address",
        ),
        (
            json!({ "type": "webhook", "address": "javascript:alert(1)" }),
            "address",
        ),
        (
            json!({ "type": "webhook", "address": "ftp://example.com/in" }),
            "address",
        ),
        (
            json!({ "type": "email", "address": "not-an-address" }),
            "address",
        ),
        (json!({ "type": "email" }), "address"),
        (json!({ "address": "a@example.com" }), "type"),
        (json!({ "type": "pigeon", "address": "roof" }), "type"),
    ];
    for (body, field) in cases {
        let (status, problem) = register(&app, "alice", body.clone()).await;
        assert_eq!(status, 400, "{body} → {problem}");
        assert!(
            problem["errors"][field].is_array(),
            "{body}: expected an error on {field}: {problem}"
        );
    }
    assert!(list(&app, "alice").await.is_empty());
}

#[tokio::test]
async fn production_refuses_plain_http_and_private_looking_webhook_urls() {
    let app = TestApp::spawn_with(&[("HERALD_ENV", "production")]).await;
    for address in [
        "http://hooks.example.com/in",
        "https://127.0.0.1/in",
        "https://localhost:8443/in",
        "https://10.1.2.3/in",
        "https://[::1]/in",
        "https://169.254.169.254/latest/meta-data",
    ] {
        let (status, problem) = register(
            &app,
            "alice",
            json!({ "type": "webhook", "address": address }),
        )
        .await;
        assert_eq!(status, 400, "{address}: {problem}");
        assert!(problem["errors"]["address"].is_array(), "{problem}");
    }
    let (status, _) = register(
        &app,
        "alice",
        json!({ "type": "webhook", "address": "https://hooks.example.com/in" }),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_user_has_at_most_fifty_targets() {
    let app = TestApp::spawn().await;
    for i in 0..50 {
        let (status, body) = register(
            &app,
            "alice",
            json!({ "type": "sms", "address": format!("+1415555{i:04}") }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, problem) = register(
        &app,
        "alice",
        json!({ "type": "sms", "address": "+14155559999" }),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    // Registering one it already has still answers with it.
    let (status, _) = register(
        &app,
        "alice",
        json!({ "type": "sms", "address": "+14155550007" }),
    )
    .await;
    assert_eq!(status, 200);
}
