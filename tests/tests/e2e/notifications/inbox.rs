//! The notification inbox through HTTP against the real `herald-api`, PostgreSQL and Redis: the
//! model, paging, time windows, filters and read state.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};

use super::{get, ids};

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
        "channels",
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
    // Seed 002's fields, plus the channels it goes out on (the default: with an address, email too).
    assert_eq!(created["channels"], serde_json::json!(["inApp", "email"]));
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
