//! Recipient profiles (`/Users`) through HTTP against the real `herald-api` and PostgreSQL.

use std::collections::BTreeSet;

use herald_tests::audience::status_and_body;
use herald_tests::{Tenant, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

/// A well-formed language tag of exactly the 35 characters allowed.
const LONGEST_LOCALE: &str = "zh-Hant-TW-abcdefgh-abcdefgh-abcdef";

fn full_profile() -> Value {
    json!({
        "email": "alice@example.com",
        "displayName": "Alice Liddell",
        "locale": "en-GB",
        "preferences": { "emailEnabled": true, "emailOptOut": ["PasswordReset", "UserInvite"] }
    })
}

async fn put(app: &TestApp, user: &str, body: Value) -> (u16, Value) {
    app.backend_call(
        &app.tenant,
        Method::PUT,
        &format!("Users/{user}"),
        Some(body),
    )
    .await
}

async fn get(app: &TestApp, tenant: &Tenant, path: &str) -> (u16, Value) {
    app.backend_call(tenant, Method::GET, path, None).await
}

/// Every user id of a listing, following `nextAfter` from the first page to the last.
async fn list_all(app: &TestApp, tenant: &Tenant, page_size: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let (status, page) = get(app, tenant, &format!("Users?pageSize={page_size}{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userId"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= page_size);
        pages.push(ids);
        match page["nextAfter"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn put_creates_a_profile_with_201_then_replaces_it_with_200() {
    let app = TestApp::spawn().await;
    let (status, created) = put(&app, "alice", full_profile()).await;
    assert_eq!(status, 201, "{created}");
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "createdAt",
            "displayName",
            "email",
            "locale",
            "preferences",
            "updatedAt",
            "userId"
        ]
    );
    assert_eq!(created["userId"], "alice");
    assert_eq!(created["email"], "alice@example.com");
    assert_eq!(created["displayName"], "Alice Liddell");
    assert_eq!(created["locale"], "en-GB");
    assert_eq!(
        created["preferences"],
        json!({ "emailEnabled": true, "emailOptOut": ["UserInvite", "PasswordReset"] })
    );
    assert_eq!(created["createdAt"], created["updatedAt"]);

    let (status, repeated) = put(&app, "alice", full_profile()).await;
    assert_eq!(status, 200, "a repeated PUT updates, it does not create");
    assert_eq!(
        repeated, created,
        "an identical PUT changes nothing, not even updatedAt"
    );

    let (status, updated) = put(
        &app,
        "alice",
        json!({ "email": "alice@wonderland.example", "preferences": { "emailEnabled": false } }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["email"], "alice@wonderland.example");
    assert_eq!(
        updated["displayName"],
        Value::Null,
        "left out means cleared"
    );
    assert_eq!(updated["locale"], Value::Null);
    assert_eq!(
        updated["preferences"],
        json!({ "emailEnabled": false, "emailOptOut": [] })
    );
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert_ne!(updated["updatedAt"], created["updatedAt"]);

    let (status, fetched) = get(&app, &app.tenant, "Users/alice").await;
    assert_eq!(status, 200);
    assert_eq!(fetched, updated);
}

#[tokio::test]
async fn an_empty_profile_accepts_every_email_by_default() {
    let app = TestApp::spawn().await;
    let (status, created) = put(&app, "bob", json!({})).await;
    assert_eq!(status, 201);
    assert_eq!(created["email"], Value::Null);
    assert_eq!(
        created["preferences"],
        json!({ "emailEnabled": true, "emailOptOut": [] })
    );
}

#[tokio::test]
async fn a_deleted_profile_is_404_to_read_and_to_delete_again() {
    let app = TestApp::spawn().await;
    assert_eq!(get(&app, &app.tenant, "Users/alice").await.0, 404);
    put(&app, "alice", full_profile()).await;
    assert_eq!(get(&app, &app.tenant, "Users/alice").await.0, 200);

    let delete = || app.backend_call(&app.tenant, Method::DELETE, "Users/alice", None);
    let (status, body) = delete().await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, problem) = get(&app, &app.tenant, "Users/alice").await;
    assert_eq!(status, 404);
    assert_eq!(problem["status"], 404);
    assert_eq!(delete().await.0, 404);
}

#[tokio::test]
async fn listing_pages_return_every_recipient_exactly_once_in_user_id_order() {
    let app = TestApp::spawn().await;
    let mut expected = BTreeSet::new();
    for i in 0..25 {
        let user = format!("user-{i:02}");
        put(&app, &user, json!({ "displayName": format!("User {i}") })).await;
        expected.insert(user);
    }

    let pages = list_all(&app, &app.tenant, 10).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [10, 10, 5],
        "the last page says so with nextAfter: null"
    );
    let seen: Vec<String> = pages.concat();
    assert_eq!(seen, expected.iter().cloned().collect::<Vec<_>>());

    let exact = list_all(&app, &app.tenant, 25).await;
    assert_eq!(exact.len(), 1, "a full last page has no next page");

    let (_, default_page) = get(&app, &app.tenant, "Users").await;
    assert_eq!(default_page["data"].as_array().unwrap().len(), 25);
    assert_eq!(default_page["nextAfter"], Value::Null);
    assert_eq!(default_page["data"][0]["displayName"], "User 0");
}

#[tokio::test]
async fn every_invalid_field_is_a_400_naming_it() {
    assert_eq!(LONGEST_LOCALE.len(), 35);
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "email": "not-an-email" }), "email"),
        (json!({ "email": "" }), "email"),
        (json!({ "displayName": "d".repeat(201) }), "displayName"),
        (json!({ "displayName": " " }), "displayName"),
        (json!({ "locale": "en GB" }), "locale"),
        (json!({ "locale": "en_GB" }), "locale"),
        (json!({ "locale": format!("{LONGEST_LOCALE}g") }), "locale"),
        (
            json!({ "preferences": { "emailOptOut": ["UserInvite", "Newsletter"] } }),
            "preferences.emailOptOut[1]",
        ),
        (
            json!({ "preferences": { "emailEnabled": "yes" } }),
            "preferences.emailEnabled",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = put(&app, "alice", body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["title"], "Validation Error");
        assert!(problem["errors"][field].is_array(), "{body}: {problem}");
    }
    let (_, all) = put(
        &app,
        "alice",
        json!({ "email": "x", "displayName": "d".repeat(201), "locale": "??" }),
    )
    .await;
    let fields: Vec<&String> = all["errors"].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["displayName", "email", "locale"],
        "every problem at once"
    );

    let long_id = "u".repeat(129);
    for bad_user in ["bad%20id", "a*b", long_id.as_str()] {
        for method in [Method::PUT, Method::GET, Method::DELETE] {
            let (status, problem) = app
                .backend_call(
                    &app.tenant,
                    method.clone(),
                    &format!("Users/{bad_user}"),
                    Some(json!({})),
                )
                .await;
            assert_eq!(status, 400, "{method} {bad_user}: {problem}");
            assert!(problem["errors"]["userId"].is_array(), "{problem}");
        }
    }
    assert_eq!(
        get(&app, &app.tenant, "Users").await.1["data"],
        json!([]),
        "nothing stored"
    );

    let longest = put(
        &app,
        "alice",
        json!({ "displayName": "d".repeat(200), "locale": LONGEST_LOCALE }),
    )
    .await;
    assert_eq!(
        longest.0, 201,
        "the limits themselves are accepted: {}",
        longest.1
    );

    for (query, field) in [
        ("pageSize=0", "pageSize"),
        ("pageSize=1001", "pageSize"),
        ("pageSize=ten", "pageSize"),
        ("after=bad%20id", "after"),
    ] {
        let (status, problem) = get(&app, &app.tenant, &format!("Users?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(problem["errors"][field].is_array(), "{query}: {problem}");
    }
}

#[tokio::test]
async fn user_tokens_are_refused_on_recipient_routes() {
    let app = TestApp::spawn().await;
    put(&app, "alice", full_profile()).await;
    let token = app.token_for(&app.tenant, "alice").await;
    for (method, path) in [
        (Method::PUT, "Users/alice"),
        (Method::GET, "Users/alice"),
        (Method::DELETE, "Users/alice"),
        (Method::GET, "Users"),
    ] {
        let response = app
            .as_user(&app.tenant, &token, method.clone(), path)
            .json(&full_profile())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    assert_eq!(
        get(&app, &app.tenant, "Users/alice").await.0,
        200,
        "still there"
    );
}

#[tokio::test]
async fn another_tenant_sees_none_of_the_profiles() {
    let app = TestApp::spawn().await;
    put(&app, "alice", full_profile()).await;
    let other = app.create_tenant("globex").await;

    assert_eq!(get(&app, &other, "Users/alice").await.0, 404);
    let (status, page) = get(&app, &other, "Users").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"], json!([]));
    assert_eq!(page["nextAfter"], Value::Null);
    let (status, _) = app
        .backend_call(&other, Method::DELETE, "Users/alice", None)
        .await;
    assert_eq!(status, 404);

    // Its own profile of the same user id is its own.
    let (status, _) = app
        .backend_call(&other, Method::PUT, "Users/alice", Some(json!({})))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        get(&app, &app.tenant, "Users/alice").await.1["email"],
        "alice@example.com"
    );

    // Its key on this tenant's URL is refused outright.
    let response = app
        .client
        .get(app.tenant_url(&app.tenant, "Users/alice"))
        .header("X-API-Key", &other.api_key)
        .send()
        .await
        .unwrap();
    let (status, _) = status_and_body(response).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn erasing_a_user_removes_their_profile_and_subscriptions() {
    let app = TestApp::spawn().await;
    put(&app, "alice", full_profile()).await;
    put(&app, "bob", json!({})).await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    app.subscribe(&app.tenant, topic_id, &["alice".into(), "bob".into()])
        .await;

    let (status, erased) = app
        .backend_call(
            &app.tenant,
            Method::DELETE,
            "Notifications/users/alice",
            None,
        )
        .await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["deleted"]["recipients"], 1);
    assert_eq!(erased["deleted"]["topicSubscriptions"], 1);

    assert_eq!(get(&app, &app.tenant, "Users/alice").await.0, 404);
    let (_, subscribers) = get(&app, &app.tenant, &format!("Topics/{topic_id}/subscribers")).await;
    assert_eq!(subscribers["data"].as_array().unwrap().len(), 1);
    assert_eq!(subscribers["data"][0]["userId"], "bob", "bob keeps his");
    assert_eq!(get(&app, &app.tenant, "Users/bob").await.0, 200);
}

#[tokio::test]
async fn renaming_a_user_moves_their_profile_and_subscriptions() {
    let app = TestApp::spawn().await;
    let (_, before) = put(&app, "temp-42", full_profile()).await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    app.subscribe(&app.tenant, topic_id, &["temp-42".into()])
        .await;

    let (status, renamed) = app
        .backend_call(
            &app.tenant,
            Method::PUT,
            "Notifications/users/temp-42/update-id",
            Some(json!({ "newUserId": "alice" })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["updated"]["recipients"], 1);
    assert_eq!(renamed["updated"]["topicSubscriptions"], 1);

    assert_eq!(get(&app, &app.tenant, "Users/temp-42").await.0, 404);
    let (status, moved) = get(&app, &app.tenant, "Users/alice").await;
    assert_eq!(status, 200);
    assert_eq!(moved["userId"], "alice");
    assert_eq!(moved["email"], before["email"]);
    assert_eq!(moved["preferences"], before["preferences"]);
    let (_, subscribers) = get(&app, &app.tenant, &format!("Topics/{topic_id}/subscribers")).await;
    let users: Vec<&str> = subscribers["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["userId"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice"]);
}
