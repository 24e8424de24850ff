//! Creating notifications: idempotency, hostile and formatted content, who sees what, validation
//! limits, scheduling and the seed's paths, against the real `herald-api`.

use herald_tests::TestApp;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};

use super::get;

#[tokio::test]
async fn the_same_idempotency_key_creates_once_and_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let body = json!({ "userId": "alice", "subject": "Once", "message": "only once", "type": "UserInvite" });
    let send = |body: Value| {
        app.as_backend(&app.tenant, Method::POST, "Notifications")
            .header("Idempotency-Key", "order-42-shipped")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json_body(first).await;
    let second = send(body.clone()).await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(second).await, first);

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);

    let different = send(
        json!({ "userId": "alice", "subject": "Twice?", "message": "no", "type": "UserInvite" }),
    )
    .await
    .unwrap();
    assert_eq!(different.status(), 422);

    // Keys are per caller: alice's own token may reuse the same key string.
    let token = app.token_for(&app.tenant, "alice").await;
    let mine = app
        .as_user(&app.tenant, &token, Method::POST, "Notifications")
        .header("Idempotency-Key", "order-42-shipped")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 201);
    assert_ne!(json_body(mine).await["id"], first["id"]);
}

#[tokio::test]
async fn stored_xss_is_impossible() {
    let app = TestApp::spawn().await;
    let payload = concat!(
        "<p>Hi</p><script>alert(1)</script><img src=x onerror=alert(2)>",
        "<a href=\"javascript:alert(3)\">click</a><iframe src=\"https://evil\"></iframe>",
        "<object data=\"x.swf\"></object><div style=\"width:expression(alert(4))\">styled</div>",
        "<a href=\"https://example.com\">fine</a>"
    );
    let created = app
        .notify(&app.tenant, "alice", json!({ "htmlContent": payload }))
        .await;
    let html = created["htmlContent"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    for needle in [
        "<script",
        "onerror",
        "javascript:",
        "<iframe",
        "<object",
        "style=",
        "expression(",
    ] {
        assert!(!html.contains(needle), "{needle} survived: {html}");
    }
    assert!(
        html.contains("<p>hi</p>") && html.contains("https://example.com"),
        "{html}"
    );
}

#[tokio::test]
async fn content_comes_in_every_format() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let html_only = app
        .create_notification(
            &app.tenant,
            json!({ "userId": "alice", "subject": "S", "type": "SystemAnnouncement", "htmlContent": "<p>Hello <b>world</b></p>" }),
        )
        .await;
    let id = html_only["id"].as_str().unwrap();
    let (_, text) = get(
        &app,
        &token,
        &format!("Notifications/{id}/content?format=text"),
    )
    .await;
    assert_eq!(text["text"], "Hello world");
    assert!(text.get("html").is_none());
    let (_, html) = get(
        &app,
        &token,
        &format!("Notifications/{id}/content?format=html"),
    )
    .await;
    assert_eq!(html["html"], "<p>Hello <b>world</b></p>");
    let (_, full) = get(&app, &token, &format!("Notifications/{id}/content")).await;
    assert_eq!(full["format"], "full");
    assert!(full["html"].is_string() && full["text"].is_string() && full["summary"].is_string());

    let plain = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "message": "a < b", "summary": "short" }),
        )
        .await;
    let id = plain["id"].as_str().unwrap();
    let (_, html) = get(
        &app,
        &token,
        &format!("Notifications/{id}/content?format=html"),
    )
    .await;
    assert_eq!(html["html"], "<p>a &lt; b</p>");
    let (_, summary) = get(
        &app,
        &token,
        &format!("Notifications/{id}/content?format=summary"),
    )
    .await;
    assert_eq!(summary["summary"], "short");
    let (status, bad) = get(
        &app,
        &token,
        &format!("Notifications/{id}/content?format=pdf"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad["errors"]["format"].is_array());
}

#[tokio::test]
async fn users_see_only_their_own_and_tenants_only_theirs() {
    let app = TestApp::spawn().await;
    let bobs = app.notify(&app.tenant, "bob", json!({})).await;
    let bob_id = bobs["id"].as_str().unwrap();
    let alice = app.token_for(&app.tenant, "alice").await;

    let (status, body) = get(&app, &alice, &format!("Notifications/{bob_id}")).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = get(&app, &alice, &format!("Notifications/{bob_id}/content")).await;
    assert_eq!(status, 403);
    for (method, path) in [
        (Method::PUT, format!("Notifications/{bob_id}/read")),
        (Method::PUT, format!("Notifications/{bob_id}/unread")),
        (Method::DELETE, format!("Notifications/{bob_id}")),
    ] {
        let response = app
            .as_user(&app.tenant, &alice, method, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let (status, _) = get(&app, &alice, "Notifications?userId=bob").await;
    assert_eq!(status, 403);
    let for_bob = app
        .as_user(&app.tenant, &alice, Method::POST, "Notifications")
        .json(&json!({ "userId": "bob", "subject": "s", "message": "m", "type": "UserInvite" }))
        .send()
        .await
        .unwrap();
    assert_eq!(for_bob.status(), 403);
    let for_self = app
        .as_user(&app.tenant, &alice, Method::POST, "Notifications")
        .json(&json!({ "subject": "s", "message": "m", "type": "UserInvite" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(for_self).await["userId"], "alice");

    // Another tenant, even with bob's id in hand, finds nothing.
    let other = app.create_tenant("globex").await;
    let response = app
        .as_backend(&other, Method::GET, &format!("Notifications/{bob_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .as_backend(&other, Method::DELETE, &format!("Notifications/{bob_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let listing = app
        .as_backend(&other, Method::GET, "Notifications?userId=bob")
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(listing).await["totalCount"], 0);
    let (status, still_there) = get(
        &app,
        &app.token_for(&app.tenant, "bob").await,
        &format!("Notifications/{bob_id}"),
    )
    .await;
    assert_eq!((status, still_there["id"].as_str()), (200, Some(bob_id)));
}

#[tokio::test]
async fn every_validation_limit_is_a_field_error() {
    let app = TestApp::spawn().await;
    let in_a_while = |days: i64| (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
    let metadata_keys: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (json!({ "subject": "" }), "subject"),
        (json!({ "subject": "s".repeat(201) }), "subject"),
        (json!({ "message": "m".repeat(10_001) }), "message"),
        (json!({ "message": "" }), "message"),
        (
            json!({ "htmlContent": "h".repeat(100 * 1024 + 1) }),
            "htmlContent",
        ),
        (json!({ "summary": "x".repeat(501) }), "summary"),
        (json!({ "metadata": metadata_keys }), "metadata"),
        (json!({ "metadata": { "k".repeat(65): "v" } }), "metadata"),
        (
            json!({ "metadata": { "long": "v".repeat(1025) } }),
            "metadata.long",
        ),
        (json!({ "metadata": { "n": 5 } }), "metadata.n"),
        (json!({ "email": "not-an-address" }), "email"),
        (json!({ "userId": "" }), "userId"),
        (json!({ "userId": "u".repeat(129) }), "userId"),
        (json!({ "userId": "white space" }), "userId"),
        (
            json!({ "scheduledFor": "2020-01-01T00:00:00Z" }),
            "scheduledFor",
        ),
        (json!({ "scheduledFor": in_a_while(400) }), "scheduledFor"),
        (json!({ "scheduledFor": "next tuesday" }), "scheduledFor"),
        (json!({ "type": "Spam" }), "type"),
        (json!({ "priority": "Extreme" }), "priority"),
        (json!({ "clientId": "c".repeat(129) }), "clientId"),
        (json!({ "subject": 42 }), "subject"),
    ];
    for (overrides, field) in cases {
        let mut body =
            json!({ "userId": "alice", "subject": "s", "message": "m", "type": "UserInvite" });
        body.as_object_mut()
            .unwrap()
            .extend(overrides.as_object().unwrap().clone());
        let response = app
            .as_backend(&app.tenant, Method::POST, "Notifications")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let problem = json_body(response).await;
        assert_eq!(status, 400, "{field}: {problem}");
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
    let missing = app
        .as_backend(&app.tenant, Method::POST, "Notifications")
        .json(&json!({ "message": "m" }))
        .send()
        .await
        .unwrap();
    let problem = json_body(missing).await;
    for field in ["userId", "subject"] {
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
    assert!(
        problem["errors"]["type"].is_null(),
        "type is optional: {problem}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "bad input changes nothing");
}

#[tokio::test]
async fn scheduled_notifications_wait_unseen_and_can_be_cancelled() {
    let app = TestApp::spawn().await;
    let when = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let scheduled = app
        .notify(&app.tenant, "alice", json!({ "scheduledFor": when }))
        .await;
    assert_eq!(scheduled["status"], "Scheduled");
    let id = scheduled["id"].as_str().unwrap();
    let schedule: (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT state, due_at FROM schedules WHERE target_id = $1::uuid")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("a schedule record written with the notification");
    assert_eq!(schedule.0, "Pending");

    let token = app.token_for(&app.tenant, "alice").await;
    let (_, inbox) = get(&app, &token, "Notifications").await;
    assert_eq!(inbox["totalCount"], 0, "not in the inbox before its time");
    let (status, _) = get(&app, &token, &format!("Notifications/{id}")).await;
    assert_eq!(status, 404);

    let cancel = |id: String| {
        app.as_backend(
            &app.tenant,
            Method::POST,
            &format!("Notifications/{id}/cancel"),
        )
        .send()
    };
    let cancelled = json_body(cancel(id.to_owned()).await.unwrap()).await;
    assert_eq!(cancelled["status"], "Cancelled");
    let state: String =
        sqlx::query_scalar("SELECT state FROM schedules WHERE target_id = $1::uuid")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state, "Cancelled");
    assert_eq!(
        cancel(id.to_owned()).await.unwrap().status(),
        200,
        "cancelling twice is harmless"
    );

    let immediate = app.notify(&app.tenant, "alice", json!({})).await;
    sqlx::query("UPDATE notifications SET status = 'Sent', sent_at = now() WHERE id = $1::uuid")
        .bind(immediate["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let too_late = cancel(immediate["id"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(too_late.status(), 409);

    // alice sees only what reached her; her totals leave the cancelled one out, whatever the
    // filter, while the backend's listing of her counts both.
    let another = app
        .notify(&app.tenant, "alice", json!({ "scheduledFor": when }))
        .await;
    assert_eq!(another["status"], "Scheduled");
    for (query, total) in [
        ("Notifications", 1),
        ("Notifications?status=Cancelled", 0),
        ("Notifications?status=Scheduled", 0),
        ("Notifications?unreadOnly=true", 1),
        (
            "Notifications?type=SystemAnnouncement&pageSize=1&pageNumber=2",
            1,
        ),
    ] {
        let (status, page) = get(&app, &token, query).await;
        assert_eq!(
            (status, &page["totalCount"]),
            (200, &json!(total)),
            "{query}: {page}"
        );
    }
    let (_, everything) = app
        .backend_call(&app.tenant, Method::GET, "Notifications?userId=alice", None)
        .await;
    assert_eq!(everything["totalCount"], 3, "{everything}");

    let by_user = app
        .as_user(
            &app.tenant,
            &token,
            Method::POST,
            &format!("Notifications/{id}/cancel"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_user.status(), 401, "cancelling is for the backend");
}

#[tokio::test]
async fn seed_002_paths_reach_the_same_handlers() {
    let app = TestApp::spawn().await;
    let base = app.base_url();
    let created = app
        .client
        .post(format!("{base}/api/Notifications"))
        .header("X-API-Key", &app.tenant.api_key)
        .json(&json!({ "userId": "alice", "subject": "s", "message": "m", "type": "SystemAnnouncement", "priority": "Normal" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = json_body(created).await;
    let id = created["id"].as_str().unwrap();

    let exchange = app
        .client
        .post(format!("{base}/api/Auth/token-exchange"))
        .header("X-API-Key", &app.tenant.api_key)
        .json(&json!({ "userId": "alice" }))
        .send()
        .await
        .unwrap();
    let token = json_body(exchange).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = app
        .client
        .get(format!("{base}/api/Notifications?pageNumber=1&pageSize=20"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let page = json_body(page).await;
    assert_eq!(
        (page["totalRecords"].as_i64(), page["totalPages"].as_i64()),
        (Some(1), Some(1))
    );
    let read = app
        .client
        .put(format!("{base}/api/Notifications/{id}/read"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(read).await["status"], "Read");
    let one = app
        .client
        .get(format!("{base}/api/Notifications/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let bad = app
        .client
        .get(format!("{base}/api/Notifications?pageSize=500"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(json_body(bad).await["errors"]["pageSize"].is_array());
    let anonymous = app
        .client
        .get(format!("{base}/api/Notifications"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let deleted = app
        .client
        .delete(format!("{base}/api/Notifications/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
}
