//! The notification inbox through HTTP against the real `herald-api`, PostgreSQL and Redis.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app
        .as_user(&app.tenant, token, Method::GET, path)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json_body(response).await)
}

#[tokio::test]
async fn a_created_notification_has_every_field_of_the_model() {
    let app = TestApp::spawn().await;
    let created = app
        .notify(
            &app.tenant,
            "alice",
            json!({
                "clientId": "tab-1", "priority": "High", "email": "alice@example.com",
                "htmlContent": "<p>We will be performing <strong>maintenance</strong>.</p>",
                "summary": "Maintenance", "metadata": { "actionUrl": "/maintenance" }
            }),
        )
        .await;
    let expected_keys = [
        "broadcastId",
        "clientId",
        "createdAt",
        "email",
        "errorMessage",
        "groupId",
        "htmlContent",
        "id",
        "message",
        "metadata",
        "objectType",
        "priority",
        "readAt",
        "retryCount",
        "scheduledFor",
        "sentAt",
        "status",
        "subject",
        "summary",
        "tenantId",
        "type",
        "userId",
    ];
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, expected_keys);
    assert_eq!(created["objectType"], "Notification");
    assert_eq!(created["status"], "Pending");
    assert_eq!(created["priority"], "High");
    assert_eq!(created["tenantId"], app.tenant.id.to_string());
    assert_eq!(created["metadata"]["actionUrl"], "/maintenance");
    assert_eq!(created["retryCount"], 0);
    assert!(created["readAt"].is_null());

    let token = app.token_for(&app.tenant, "alice").await;
    let (status, fetched) = get(
        &app,
        &token,
        &format!("Notifications/{}", created["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn twenty_five_notifications_page_by_ten_into_three_pages() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(
            app.notify(
                &app.tenant,
                "alice",
                json!({ "subject": format!("n{i:02}") }),
            )
            .await,
        );
    }
    app.notify(&app.tenant, "bob", json!({})).await;
    let token = app.token_for(&app.tenant, "alice").await;

    let mut seen = Vec::new();
    let expectations = [
        (1, 10, false, true),
        (2, 10, true, true),
        (3, 5, true, false),
        (4, 0, true, false),
    ];
    for (page_number, len, has_previous, has_next) in expectations {
        let (status, page) = get(
            &app,
            &token,
            &format!("Notifications?pageNumber={page_number}&pageSize=10"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            page["data"].as_array().unwrap().len(),
            len,
            "page {page_number}"
        );
        assert_eq!(
            (page["totalCount"].as_i64(), page["totalRecords"].as_i64()),
            (Some(25), Some(25))
        );
        assert_eq!(page["totalPages"], 3);
        assert_eq!(page["pageNumber"], page_number);
        assert_eq!(page["pageSize"], 10);
        assert_eq!(page["hasPreviousPage"], has_previous, "page {page_number}");
        assert_eq!(page["hasNextPage"], has_next, "page {page_number}");
        seen.extend(ids(&page));
    }
    // Newest first, each exactly once.
    let newest_first: Vec<String> = created
        .iter()
        .rev()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, newest_first);

    let (_, default_page) = get(&app, &token, "Notifications").await;
    assert_eq!(default_page["pageSize"], 10);
    assert_eq!(ids(&default_page), newest_first[..10]);
}

#[tokio::test]
async fn created_after_and_before_select_by_creation_time() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            app.notify(&app.tenant, "alice", json!({ "subject": format!("n{i}") }))
                .await,
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let token = app.token_for(&app.tenant, "alice").await;
    let at = |i: usize| urlencode(created[i]["createdAt"].as_str().unwrap());
    let subjects = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, after) = get(
        &app,
        &token,
        &format!("Notifications?createdAfter={}", at(2)),
    )
    .await;
    assert_eq!(subjects(&after), ["n4", "n3"]);
    let (_, before) = get(
        &app,
        &token,
        &format!("Notifications?createdBefore={}", at(2)),
    )
    .await;
    assert_eq!(subjects(&before), ["n1", "n0"]);
    let (_, between) = get(
        &app,
        &token,
        &format!(
            "Notifications?createdAfter={}&createdBefore={}",
            at(0),
            at(4)
        ),
    )
    .await;
    assert_eq!(subjects(&between), ["n3", "n2", "n1"]);
    assert_eq!(between["totalCount"], 3);
}

fn urlencode(value: &str) -> String {
    value.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn filters_and_sorts_narrow_and_order_the_list() {
    let app = TestApp::spawn().await;
    app.notify(
        &app.tenant,
        "alice",
        json!({ "subject": "b-low", "priority": "Low", "type": "UserInvite" }),
    )
    .await;
    app.notify(
        &app.tenant,
        "alice",
        json!({ "subject": "a-urgent", "priority": "Urgent", "message": "server on fire" }),
    )
    .await;
    let read = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "subject": "c-high", "priority": "High" }),
        )
        .await;
    app.notify(&app.tenant, "bob", json!({ "subject": "bob's" }))
        .await;
    let token = app.token_for(&app.tenant, "alice").await;
    let path = format!("Notifications/{}/read", read["id"].as_str().unwrap());
    assert_eq!(
        app.as_user(&app.tenant, &token, Method::PUT, &path)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let subjects = |page: Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases = [
        ("sortField=priority", vec!["a-urgent", "c-high", "b-low"]),
        (
            "sortField=priority&sortOrder=asc",
            vec!["b-low", "c-high", "a-urgent"],
        ),
        (
            "sortField=subject&sortOrder=asc",
            vec!["a-urgent", "b-low", "c-high"],
        ),
        ("sortOrder=asc", vec!["b-low", "a-urgent", "c-high"]),
        ("priority=Urgent", vec!["a-urgent"]),
        ("type=UserInvite", vec!["b-low"]),
        ("status=Read", vec!["c-high"]),
        ("unreadOnly=true", vec!["a-urgent", "b-low"]),
        ("filter=FIRE", vec!["a-urgent"]),
        ("filter=%25", vec![]),
    ];
    for (query, expected) in cases {
        let (status, page) = get(&app, &token, &format!("Notifications?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(subjects(page), expected, "{query}");
    }

    // The backend lists the whole tenant, or one user.
    let all = app
        .as_backend(&app.tenant, Method::GET, "Notifications")
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(all).await["totalCount"], 4);
    let bobs = app
        .as_backend(&app.tenant, Method::GET, "Notifications?userId=bob")
        .send()
        .await
        .unwrap();
    assert_eq!(subjects(json_body(bobs).await), ["bob's"]);
}

#[tokio::test]
async fn list_parameters_out_of_range_are_400_with_field_errors() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let cases = [
        ("pageSize=51", "pageSize"),
        ("pageSize=0", "pageSize"),
        ("pageNumber=0", "pageNumber"),
        ("pageSize=ten", "pageSize"),
        ("createdAfter=yesterday", "createdAfter"),
        ("createdBefore=2026-13-45T00:00:00Z", "createdBefore"),
        ("status=Lost", "status"),
        ("priority=Extreme", "priority"),
        ("type=Spam", "type"),
        ("sortField=colour", "sortField"),
        ("sortOrder=up", "sortOrder"),
        ("unreadOnly=maybe", "unreadOnly"),
        ("broadcastId=nope", "broadcastId"),
    ];
    for (query, field) in cases {
        let (status, body) = get(&app, &token, &format!("Notifications?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["errors"][field].is_array(), "{query}: {body}");
    }
}

#[tokio::test]
async fn read_and_unread_round_trip_and_sync_other_devices() {
    let app = TestApp::spawn().await;
    let created = app.notify(&app.tenant, "alice", json!({})).await;
    let id = created["id"].as_str().unwrap();
    let token = app.token_for(&app.tenant, "alice").await;
    let mut events = app.listen(&app.tenant, "alice").await;

    let read = app
        .as_user(
            &app.tenant,
            &token,
            Method::PUT,
            &format!("Notifications/{id}/read"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read = json_body(read).await;
    assert_eq!(read["status"], "Read");
    assert!(read["readAt"].is_string());
    let event = events.next().await;
    assert_eq!(
        (event["type"].as_str(), event["id"].as_str()),
        (Some("NotificationRead"), Some(id))
    );
    assert!(event["parentId"].is_null() && event.as_object().unwrap().contains_key("parentId"));
    assert!(event["createdAt"].is_string());

    let (_, count) = get(&app, &token, "Notifications/unread-count").await;
    assert_eq!(count["unreadCount"], 0);

    let unread = app
        .as_user(
            &app.tenant,
            &token,
            Method::PUT,
            &format!("Notifications/{id}/unread"),
        )
        .send()
        .await
        .unwrap();
    let unread = json_body(unread).await;
    assert_eq!(
        unread["status"], "Pending",
        "back to where delivery left it"
    );
    assert!(unread["readAt"].is_null());
    assert_eq!(events.next().await["type"], "NotificationUnread");
    let (_, count) = get(&app, &token, "Notifications/unread-count").await;
    assert_eq!(count["unreadCount"], 1);

    // Marking unread again changes nothing and tells nobody.
    app.as_user(
        &app.tenant,
        &token,
        Method::PUT,
        &format!("Notifications/{id}/unread"),
    )
    .send()
    .await
    .unwrap();
    assert!(
        events
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );

    let deleted = app
        .as_user(
            &app.tenant,
            &token,
            Method::DELETE,
            &format!("Notifications/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let event = events.next().await;
    assert_eq!(
        (event["type"].as_str(), event["id"].as_str()),
        (Some("NotificationDeleted"), Some(id))
    );
    let (status, _) = get(&app, &token, &format!("Notifications/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn read_all_marks_everything_or_only_what_came_before() {
    let app = TestApp::spawn().await;
    let first = app.notify(&app.tenant, "alice", json!({})).await;
    app.notify(&app.tenant, "alice", json!({})).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.notify(&app.tenant, "alice", json!({})).await;
    app.notify(&app.tenant, "bob", json!({})).await;
    let token = app.token_for(&app.tenant, "alice").await;
    let mut events = app.listen(&app.tenant, "alice").await;

    let path = format!("Notifications/read-all?before={}", urlencode(&cutoff));
    let result = app
        .as_user(&app.tenant, &token, Method::PUT, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(result).await["updated"], 2);
    // One event for the whole operation, not one per notification.
    let event = events.next().await;
    assert_eq!(event["type"], "NotificationsReadAll");
    assert_eq!(event["id"], "alice");
    assert_eq!(events.next_within(Duration::from_millis(500)).await, None);
    let (_, read) = get(
        &app,
        &token,
        &format!("Notifications/{}", first["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(read["status"], "Read");
    let (_, count) = get(&app, &token, "Notifications/unread-count").await;
    assert_eq!(count["unreadCount"], 1);

    let result = app
        .as_user(&app.tenant, &token, Method::PUT, "Notifications/read-all")
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(result).await["updated"], 1);
    // Bob's inbox is untouched; the backend must say whose inbox it means.
    let bob = app
        .as_backend(
            &app.tenant,
            Method::GET,
            "Notifications/unread-count?userId=bob",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(bob).await["unreadCount"], 1);
    let nobody = app
        .as_backend(&app.tenant, Method::PUT, "Notifications/read-all")
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), 400);
}

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
