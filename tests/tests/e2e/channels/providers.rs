//! `Providers`: creating, showing (never a secret) and changing the services a tenant sends
//! through, against the real `herald-api` and PostgreSQL.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use herald_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.backend_call(&app.tenant, method, path, body).await
}

fn smtp(name: &str, priority: i32) -> Value {
    json!({ "type": "smtp", "name": name, "priority": priority, "enabled": true,
            "config": { "url": "smtp://relay-user:s3cret-pw@127.0.0.1:2525", "from": "Acme <no-reply@acme.example>" } })
}

#[tokio::test]
async fn secrets_are_write_only_and_sealed_at_rest() {
    let app = TestApp::spawn().await;
    let (status, created) =
        call(&app, Method::POST, "Providers", Some(smtp("relay one", 10))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["config"]["server"], "smtp://127.0.0.1:2525");
    assert_eq!(created["config"]["from"], "Acme <no-reply@acme.example>");
    let sms = json!({ "type": "sms", "name": "twilio", "config": {
        "baseUrl": "http://127.0.0.1:9", "accountSid": "AC0123", "authToken": "tw-t0ken-secret", "from": "+15005550006" } });
    let (status, sms) = call(&app, Method::POST, "Providers", Some(sms)).await;
    assert_eq!(status, 201, "{sms}");
    assert_eq!(sms["priority"], 0);
    assert_eq!(sms["enabled"], true);

    let (status, listed) = call(&app, Method::GET, "Providers", None).await;
    assert_eq!(status, 200);
    let shown = listed.to_string();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    for secret in ["s3cret-pw", "relay-user", "tw-t0ken-secret"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    let stored: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT secret, config::text FROM providers")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for (sealed, config) in stored {
        for secret in ["s3cret-pw", "tw-t0ken-secret"] {
            assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
            assert!(!config.contains(secret));
        }
    }

    // Providers are the backend's: a user token is refused as for every backend-only route.
    let token = app.token_for(&app.tenant, "alice").await;
    let response = app
        .as_user(&app.tenant, &token, Method::GET, "Providers")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn web_push_gets_a_generated_vapid_key_and_webhooks_a_secret_shown_once() {
    let app = TestApp::spawn().await;
    let (status, push) = call(
        &app,
        Method::POST,
        "Providers",
        Some(json!({ "type": "webPush", "name": "push" })),
    )
    .await;
    assert_eq!(status, 201, "{push}");
    let key = URL_SAFE_NO_PAD
        .decode(push["vapidPublicKey"].as_str().unwrap())
        .unwrap();
    assert_eq!((key.len(), key[0]), (65, 4), "an uncompressed P-256 point");
    let path = format!("Providers/{}", push["id"].as_str().unwrap());
    let (_, shown) = call(&app, Method::GET, &path, None).await;
    assert_eq!(shown["vapidPublicKey"], push["vapidPublicKey"]);
    let (status, problem) = call(
        &app,
        Method::POST,
        "Providers",
        Some(json!({ "type": "webPush", "name": "push 2" })),
    )
    .await;
    assert_eq!(status, 409, "one per tenant: {problem}");

    // A new contact keeps the key every subscription was made with.
    let (status, updated) = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "name": "push", "config": { "subject": "mailto:ops@acme.example" } })),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["vapidPublicKey"], push["vapidPublicKey"]);
    assert_eq!(updated["config"]["subject"], "mailto:ops@acme.example");

    let (status, hook) = call(
        &app,
        Method::POST,
        "Providers",
        Some(json!({ "type": "webhook", "name": "signing" })),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap();
    assert_eq!(
        STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap()
            .len(),
        32
    );
    let (_, shown) = call(
        &app,
        Method::GET,
        &format!("Providers/{}", hook["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert!(shown["secret"].is_null(), "{shown}");
    assert!(!shown.to_string().contains(secret));
}

#[tokio::test]
async fn put_replaces_order_and_switch_and_keeps_settings_left_out() {
    let app = TestApp::spawn().await;
    let (_, first) = call(&app, Method::POST, "Providers", Some(smtp("first", 1))).await;
    let (_, second) = call(&app, Method::POST, "Providers", Some(smtp("second", 2))).await;
    let path = format!("Providers/{}", first["id"].as_str().unwrap());

    let (status, updated) = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "name": "first", "priority": 5, "enabled": false })),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["priority"].as_i64(), updated["enabled"].as_bool()),
        (Some(5), Some(false))
    );
    assert_eq!(updated["config"], first["config"]);

    let (status, problem) = call(&app, Method::PUT, &path, Some(json!({ "name": "second" }))).await;
    assert_eq!(status, 409, "{problem}");
    let (status, problem) = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "type": "sms", "name": "first" })),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["errors"]["type"].is_array());
    let (status, problem) = call(&app, Method::POST, "Providers", Some(smtp("second", 3))).await;
    assert_eq!(status, 409, "{problem}");

    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("Providers/{}", second["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("Providers/{}", second["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        Method::PUT,
        &format!("Providers/{}", second["id"].as_str().unwrap()),
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_settings_get_400_naming_each_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({ "type": "smtp", "name": "x", "config": { "url": "http://mail.example.com", "from": "nope" } }),
            &["config.url", "config.from"][..],
        ),
        (
            json!({ "type": "smtp", "name": "x" }),
            &["config.url", "config.from"][..],
        ),
        (
            json!({ "type": "sms", "name": "x", "config": { "baseUrl": "javascript:alert(1)", "accountSid": "AC 1", "from": "0", "extra": true } }),
            &[
                "config.baseUrl",
                "config.accountSid",
                "config.authToken",
                "config.from",
                "config.extra",
            ][..],
        ),
        (
            json!({ "type": "webhook", "name": "x", "config": { "secret": "mine" } }),
            &["config.secret"][..],
        ),
        (
            json!({ "type": "webPush", "name": "x", "config": { "subject": "ops" } }),
            &["config.subject"][..],
        ),
        (
            json!({ "type": "smtp", "name": "", "priority": -1, "config": [] }),
            &["name", "priority", "config"][..],
        ),
        (json!({ "name": "x" }), &["type"][..]),
    ];
    for (body, fields) in cases {
        let (status, problem) = call(&app, Method::POST, "Providers", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {problem}");
        for field in fields {
            assert!(
                problem["errors"][field].is_array(),
                "{body}: expected an error on {field}: {problem}"
            );
        }
    }
    let (_, listed) = call(&app, Method::GET, "Providers", None).await;
    assert!(listed["data"].as_array().unwrap().is_empty());
}
