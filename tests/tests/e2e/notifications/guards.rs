//! `POST /Notifications` and `PUT /Notifications/read-all` against misuse: a user token cannot
//! mail arbitrary addresses, `type` may be left out (seed 002), and marking a large inbox read
//! does not flood the user's own devices.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::smtp::{SmtpBehaviour, SmtpServer};
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// Long enough for a stray event or email to have arrived if it was going to.
const QUIET: Duration = Duration::from_secs(2);

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(app.tenant.id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_token_may_email_only_the_address_of_its_own_profile() {
    let smtp = SmtpServer::start(SmtpBehaviour::Accept);
    let app = TestApp::spawn().await;
    let url = smtp.url();
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app.start("herald-email", &[("SMTP_URL", &url)]).await;
    let token = app.token_for(&app.tenant, "alice").await;
    let create = |email: &str| {
        app.as_user(&app.tenant, &token, Method::POST, "Notifications")
            .json(&json!({ "subject": "Hi", "message": "Body", "email": email }))
            .send()
    };

    // No profile yet: no address is the user's own.
    let refused = create("anyone@else.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    app.put_recipient(
        &app.tenant,
        "alice",
        json!({ "email": "alice@example.com" }),
    )
    .await;
    let refused = create("anyone@else.example").await.unwrap();
    assert_eq!(refused.status(), 403, "{}", json_body(refused).await);
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM notifications WHERE tenant_id = $1"
        )
        .await,
        0,
        "a refused request stores nothing"
    );
    assert!(smtp.received().is_empty(), "nothing was mailed");

    let own = create("Alice@example.com").await.unwrap();
    assert_eq!(own.status(), 201, "{}", json_body(own).await);
    let received = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["to"], json!(["Alice@example.com"]));
}

#[tokio::test]
async fn type_may_be_left_out_and_defaults_to_system_announcement() {
    let app = TestApp::spawn().await;
    let created = app
        .create_notification(
            &app.tenant,
            json!({ "userId": "alice", "subject": "Hi", "message": "Body" }),
        )
        .await;
    assert_eq!(created["type"], "SystemAnnouncement");

    let token = app.token_for(&app.tenant, "alice").await;
    let response = app
        .as_user(&app.tenant, &token, Method::POST, "Notifications")
        .json(&json!({ "subject": "Hi", "message": "Body" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(json_body(response).await["type"], "SystemAnnouncement");

    let spec: Value = app
        .client
        .get(format!("{}/openapi.json", app.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema = &spec["components"]["schemas"]["CreateNotificationRequest"];
    assert_eq!(
        schema["properties"]["type"]["default"],
        "SystemAnnouncement"
    );
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    assert!(!required.contains(&json!("type")), "{schema}");
}

#[tokio::test]
async fn read_all_sends_one_event_and_the_device_stays_connected() {
    let app = TestApp::spawn().await;
    let unread = 300; // more than the hub's per-connection outbox (256)
    let ids: Vec<Uuid> = (0..unread).map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO notifications (tenant_id, id, user_id, subject, message, type, priority, \
         status, created_at, sent_at) \
         SELECT $1, id, 'alice', 'Subject', 'Message', 'SystemAnnouncement', 1, 'Sent', now(), \
         now() FROM unnest($2::uuid[]) AS t(id)",
    )
    .bind(app.tenant.id)
    .bind(&ids)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut device = app.raw_client(&app.base_url(), "alice").await;

    let token = app.token_for(&app.tenant, "alice").await;
    let response = app
        .as_user(&app.tenant, &token, Method::PUT, "Notifications/read-all")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await["updated"], unread);

    let record = device
        .next_message(Duration::from_secs(15))
        .await
        .expect("the read-all event");
    assert_eq!(record["target"], "MessagingEvent");
    let event = &record["arguments"][0];
    assert_eq!(event["type"], "NotificationsReadAll");
    assert_eq!(event["id"], "alice");
    assert!(event["parentId"].is_null());
    assert!(event["createdAt"].is_string());
    assert_eq!(
        device.next_message(QUIET).await,
        None,
        "one event for the whole operation"
    );

    // Still connected: the next change reaches the device.
    let path = format!("Notifications/{}/unread", ids[0]);
    let response = app
        .as_user(&app.tenant, &token, Method::PUT, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let record = device
        .next_message(Duration::from_secs(15))
        .await
        .expect("the device is still connected");
    assert_eq!(record["arguments"][0]["type"], "NotificationUnread");
}
