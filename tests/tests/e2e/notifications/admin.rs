//! Tenant-level notification operations: erasing and renaming users, analytics, test emails.

use herald_tests::TestApp;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::json;

async fn count(app: &TestApp, sql: &str, user: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

const NOTIFICATIONS: &str = "SELECT count(*) FROM notifications WHERE user_id = $1";
const SCHEDULES: &str = "SELECT count(*) FROM schedules s JOIN notifications n ON n.id = s.target_id WHERE n.user_id = $1";
const ALL_SCHEDULES: &str = "SELECT count(*) FROM schedules WHERE $1 <> ''";
const IDEMPOTENCY: &str = "SELECT count(*) FROM idempotency_keys WHERE caller = 'user:' || $1";

/// Alice: two notifications (one scheduled) and an idempotency record; Bob: one notification.
async fn populate(app: &TestApp) {
    app.notify(&app.tenant, "alice", json!({})).await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    app.notify(&app.tenant, "alice", json!({ "scheduledFor": later }))
        .await;
    let token = app.token_for(&app.tenant, "alice").await;
    let own = app
        .as_user(&app.tenant, &token, Method::POST, "Notifications")
        .header("Idempotency-Key", "k1")
        .json(&json!({ "subject": "s", "message": "m", "type": "UserInvite" }))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
    app.notify(&app.tenant, "bob", json!({})).await;
}

#[tokio::test]
async fn erasing_a_user_removes_every_row_of_theirs_and_nothing_else() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    assert_eq!(count(&app, NOTIFICATIONS, "alice").await, 3);

    let response = app
        .as_backend(&app.tenant, Method::DELETE, "Notifications/users/alice")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    assert_eq!(body["userId"], "alice");
    assert_eq!(body["deleted"]["notifications"], 3);
    assert_eq!(body["deleted"]["schedules"], 1);
    assert_eq!(body["deleted"]["idempotencyKeys"], 1);
    assert_eq!(count(&app, NOTIFICATIONS, "alice").await, 0);
    assert_eq!(count(&app, IDEMPOTENCY, "alice").await, 0);
    assert_eq!(count(&app, ALL_SCHEDULES, "x").await, 0);
    assert_eq!(count(&app, NOTIFICATIONS, "bob").await, 1, "bob keeps his");

    // Another tenant's erase of "bob" touches nothing here.
    let other = app.create_tenant("globex").await;
    let foreign = app
        .as_backend(&other, Method::DELETE, "Notifications/users/bob")
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(foreign).await["deleted"]["notifications"], 0);
    assert_eq!(count(&app, NOTIFICATIONS, "bob").await, 1);

    let token = app.token_for(&app.tenant, "bob").await;
    let by_user = app
        .as_user(
            &app.tenant,
            &token,
            Method::DELETE,
            "Notifications/users/bob",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_user.status(), 401, "erasure is for the backend");
}

#[tokio::test]
async fn renaming_a_user_moves_every_row_and_refuses_a_taken_id() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    let rename = |old: &str, new: &str| {
        app.as_backend(
            &app.tenant,
            Method::PUT,
            &format!("Notifications/users/{old}/update-id"),
        )
        .json(&json!({ "newUserId": new }))
        .send()
    };
    let taken = rename("alice", "bob").await.unwrap();
    assert_eq!(taken.status(), 409);
    assert_eq!(
        count(&app, NOTIFICATIONS, "alice").await,
        3,
        "a refused rename changes nothing"
    );

    let renamed = rename("alice", "alice-permanent").await.unwrap();
    assert_eq!(renamed.status(), 200);
    let body = json_body(renamed).await;
    assert_eq!(body["updated"]["notifications"], 3);
    assert_eq!(body["updated"]["idempotencyKeys"], 1);
    assert_eq!(count(&app, NOTIFICATIONS, "alice").await, 0);
    assert_eq!(count(&app, NOTIFICATIONS, "alice-permanent").await, 3);
    assert_eq!(count(&app, SCHEDULES, "alice-permanent").await, 1);
    assert_eq!(count(&app, IDEMPOTENCY, "alice-permanent").await, 1);

    let token = app.token_for(&app.tenant, "alice-permanent").await;
    let inbox = app
        .as_user(&app.tenant, &token, Method::GET, "Notifications")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body(inbox).await["totalCount"],
        2,
        "the scheduled one stays hidden until due"
    );

    let invalid = rename("bob", "not valid").await.unwrap();
    assert_eq!(invalid.status(), 400);
    assert!(json_body(invalid).await["errors"]["newUserId"].is_array());
    assert_eq!(rename("bob", "bob").await.unwrap().status(), 400);
}

#[tokio::test]
async fn analytics_count_by_status_type_and_priority() {
    let app = TestApp::spawn().await;
    app.notify(
        &app.tenant,
        "alice",
        json!({ "priority": "High", "email": "a@example.com" }),
    )
    .await;
    app.notify(&app.tenant, "bob", json!({ "type": "UserInvite" }))
        .await;
    let failed = app
        .notify(&app.tenant, "bob", json!({ "email": "b@example.com" }))
        .await;
    // Until the email worker exists (pipeline), a failure is recorded the way it will record it.
    sqlx::query("UPDATE notifications SET status = 'Failed', error_message = '550 mailbox unavailable', retry_count = 1 WHERE id = $1::uuid")
        .bind(failed["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();

    let stats = app
        .as_backend(
            &app.tenant,
            Method::GET,
            "Notifications/analytics/notifications",
        )
        .send()
        .await
        .unwrap();
    let stats = json_body(stats).await;
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["byStatus"]["Pending"], 2);
    assert_eq!(stats["byStatus"]["Failed"], 1);
    assert_eq!(stats["byStatus"]["Read"], 0, "every status is listed");
    assert_eq!(stats["byType"]["SystemAnnouncement"], 2);
    assert_eq!(stats["byType"]["UserInvite"], 1);
    assert_eq!(stats["byPriority"]["High"], 1);
    assert_eq!(stats["byPriority"]["Normal"], 2);
    assert_eq!(stats["email"], json!({ "requested": 2, "failed": 1 }));

    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339()
        .replace('+', "%2B");
    let empty = app
        .as_backend(
            &app.tenant,
            Method::GET,
            &format!("Notifications/analytics/notifications?fromDate={future}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(empty).await["total"], 0);

    let list = app
        .as_backend(
            &app.tenant,
            Method::GET,
            "Notifications/analytics/failed-notifications?limit=10",
        )
        .send()
        .await
        .unwrap();
    let list = json_body(list).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["errorMessage"], "550 mailbox unavailable");
    let bad_limit = app
        .as_backend(
            &app.tenant,
            Method::GET,
            "Notifications/analytics/failed-notifications?limit=0",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad_limit.status(), 400);

    let bob = app
        .as_backend(
            &app.tenant,
            Method::GET,
            "Notifications/analytics/user-notification-count?userId=bob",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(bob).await, json!(2));
    let token = app.token_for(&app.tenant, "alice").await;
    let own = app
        .as_user(
            &app.tenant,
            &token,
            Method::GET,
            "Notifications/analytics/user-notification-count",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(own).await, json!(1));
    let stats_by_user = app
        .as_user(
            &app.tenant,
            &token,
            Method::GET,
            "Notifications/analytics/notifications",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        stats_by_user.status(),
        401,
        "tenant statistics are for the backend"
    );
}

#[tokio::test]
async fn test_emails_go_to_the_configured_address_only() {
    let app = TestApp::spawn_with(&[("HERALD_TEST_EMAIL_TO", "qa@example.com")]).await;
    let response = app
        .as_backend(&app.tenant, Method::POST, "Notifications/test/send-email")
        .json(&json!({ "subject": "Template check", "message": "Hi", "type": "PasswordReset", "email": "real-user@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body = json_body(response).await;
    assert_eq!(body["email"], "qa@example.com");
    assert_eq!(body["userId"], "herald-test-email");
    assert_eq!(body["status"], "Pending");

    let invalid = app
        .as_backend(&app.tenant, Method::POST, "Notifications/test/send-email")
        .json(&json!({ "message": "no subject", "type": "PasswordReset" }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert!(json_body(invalid).await["errors"]["subject"].is_array());
}
