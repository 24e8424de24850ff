//! No credential reaches into another tenant: every operation of the OpenAPI document, called
//! with the victim's tenant id in the URL and the intruder's API key (and, where users may call
//! it, the intruder's user token), answers 403 and changes nothing.
//!
//! The walk reads the routes from the document the server serves, so a route added later is
//! covered without touching this test; its path parameters name real objects of the victim.

use std::collections::BTreeMap;

use herald_tests::TestApp;
use herald_tests::broadcasts::{broadcast, template};
use herald_tests::test_app::{Tenant, json_body};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

struct Operation {
    method: Method,
    /// The template, `{tenantId}` and all.
    path: String,
    users_may_call: bool,
}

#[tokio::test]
async fn every_route_refuses_another_tenants_credentials_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let victim = app.tenant.clone();
    let params = victims_objects(&app).await;
    let intruder = app.create_tenant("intruder").await;
    let intruder_user = app.token_for(&intruder, "alice").await;

    let operations = operations();
    assert!(
        operations.len() >= 50,
        "only {} operations",
        operations.len()
    );
    let before = snapshot(&app, &victim, &operations, &params).await;

    let mut leaks = Vec::new();
    for operation in &operations {
        let url = url(&app, &victim, &operation.path, &params);
        let by_key = send(&app, operation, &url, Credential::Key(&intruder.api_key)).await;
        if by_key != 403 {
            leaks.push(format!(
                "{} {} with an API key: {by_key}",
                operation.method, operation.path
            ));
        }
        if operation.users_may_call {
            let by_user = send(&app, operation, &url, Credential::User(&intruder_user)).await;
            if by_user != 403 {
                leaks.push(format!(
                    "{} {} with a user token: {by_user}",
                    operation.method, operation.path
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "not refused with 403:\n{}",
        leaks.join("\n")
    );

    let after = snapshot(&app, &victim, &operations, &params).await;
    assert_eq!(before, after, "the victim's data changed");
}

/// The victim's objects each path parameter names.
async fn victims_objects(app: &TestApp) -> BTreeMap<&'static str, String> {
    let notification = app
        .as_backend(&app.tenant, Method::POST, "Notifications")
        .json(&json!({ "userId": "alice", "subject": "Hi", "message": "Private", "type": "UserInvite" }))
        .send()
        .await
        .unwrap();
    assert_eq!(notification.status(), 201);
    let notification = json_body(notification).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let topic = app
        .as_backend(&app.tenant, Method::POST, "Topics")
        .json(&json!({ "name": "Releases" }))
        .send()
        .await
        .unwrap();
    assert_eq!(topic.status(), 201);
    let topic = json_body(topic).await["id"].as_str().unwrap().to_owned();

    let broadcast = broadcast(app, template(json!({ "userIds": ["alice", "bob"] }))).await;
    let chat = app.create_group("alice", &["bob"]).await;
    let message = app.send_message(&chat, "alice", "secret").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let chat_broadcast = Uuid::new_v4().to_string();
    let target = app
        .as_backend(&app.tenant, Method::POST, "Users/alice/targets")
        .json(&json!({ "type": "sms", "address": "+14155550123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(target.status(), 201);
    let target = json_body(target).await["id"].as_str().unwrap().to_owned();
    let provider = app
        .as_backend(&app.tenant, Method::POST, "Providers")
        .json(&json!({ "type": "webhook", "name": "signing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(provider.status(), 201);
    let provider = json_body(provider).await["id"].as_str().unwrap().to_owned();

    BTreeMap::from([
        ("id", notification),
        ("topicId", topic),
        ("broadcastId", chat_broadcast),
        ("chatId", chat),
        ("messageId", message),
        ("userId", "alice".to_owned()),
        ("oldUserId", "alice".to_owned()),
        ("broadcast", broadcast["id"].as_str().unwrap().to_owned()),
        ("targetId", target),
        ("provider", provider),
    ])
}

/// Every operation the server documents (the committed document is checked to be the one it
/// serves by the openapi tests).
fn operations() -> Vec<Operation> {
    let spec: Value = serde_json::from_str(&herald_api::openapi_json()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schemes = operation["security"].as_array().unwrap();
            operations.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                users_may_call: schemes.iter().any(|s| s.get("Bearer").is_some()),
            });
        }
    }
    operations
}

fn url(app: &TestApp, tenant: &Tenant, template: &str, params: &BTreeMap<&str, String>) -> String {
    let mut path = template.replace("{tenantId}", &tenant.id.to_string());
    // `/Broadcasts/{id}` names a broadcast, `/Providers/{id}` a provider; every other `{id}` a
    // notification.
    if template.contains("/Broadcasts/{id}") {
        path = path.replace("{id}", &params["broadcast"]);
    }
    if template.contains("/Providers/{id}") {
        path = path.replace("{id}", &params["provider"]);
    }
    while let Some(start) = path.find('{') {
        let end = start + path[start..].find('}').unwrap();
        let name = &path[start + 1..end];
        let value = params
            .get(name)
            .unwrap_or_else(|| panic!("{template}: no victim object for {{{name}}}; add one"));
        path.replace_range(start..=end, value);
    }
    format!("{}{path}", app.base_url())
}

enum Credential<'a> {
    Key(&'a str),
    User(&'a str),
}

async fn send(app: &TestApp, operation: &Operation, url: &str, credential: Credential<'_>) -> u16 {
    let request = app.client.request(operation.method.clone(), url);
    let request = match credential {
        Credential::Key(key) => request.header("X-API-Key", key),
        Credential::User(token) => request.bearer_auth(token),
    };
    // A well-formed body where one may be taken: the refusal must not depend on a parse error.
    let request = if matches!(operation.method, Method::POST | Method::PUT) {
        request.json(&json!({}))
    } else {
        request
    };
    request.send().await.unwrap().status().as_u16()
}

/// What the victim's own key reads from every `GET` route: the walk must leave it unchanged.
/// It also proves the routes answer their own tenant (the 403s above are not a broken route).
async fn snapshot(
    app: &TestApp,
    victim: &Tenant,
    operations: &[Operation],
    params: &BTreeMap<&str, String>,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for operation in operations.iter().filter(|o| o.method == Method::GET) {
        let url = url(app, victim, &operation.path, params);
        let response = app
            .client
            .get(&url)
            .header("X-API-Key", &victim.api_key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            ![401, 403, 500].contains(&status),
            "GET {} with the victim's own key: {status}",
            operation.path
        );
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        seen.push((format!("GET {} {status}", operation.path), body));
    }
    seen
}
