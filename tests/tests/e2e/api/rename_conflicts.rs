//! `PUT /Notifications/users/{old}/update-id` onto an id that already has data: one case per
//! unique constraint a rename could otherwise hit. Each is a 409 problem+json and changes
//! nothing, never a 500.

use herald_tests::TestApp;
use herald_tests::chat::of;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

const OLD: &str = "temp-user";
const NEW: &str = "real-user";

/// Every stored user id, by table, in a stable order: equal before and after means unchanged.
async fn snapshot(app: &TestApp) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT t, u, count(*) FROM ( \
           SELECT 'notifications' AS t, user_id AS u FROM notifications WHERE tenant_id = $1 \
           UNION ALL SELECT 'recipients', user_id FROM recipients WHERE tenant_id = $1 \
           UNION ALL SELECT 'topic_subscriptions', user_id FROM topic_subscriptions WHERE tenant_id = $1 \
           UNION ALL SELECT 'broadcast_recipients', user_id FROM broadcast_recipients WHERE tenant_id = $1 \
           UNION ALL SELECT 'idempotency_keys', caller FROM idempotency_keys WHERE tenant_id = $1 \
           UNION ALL SELECT 'chat_members', user_id FROM chat_members WHERE tenant_id = $1 \
           UNION ALL SELECT 'chat_receipts', user_id FROM chat_receipts WHERE tenant_id = $1 \
           UNION ALL SELECT 'direct_keys', direct_key FROM chats WHERE tenant_id = $1 AND direct_key IS NOT NULL \
         ) rows GROUP BY t, u ORDER BY t, u",
    )
    .bind(app.tenant.id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Renames OLD onto NEW and checks the answer is a 409 problem that changed nothing.
async fn assert_refused(app: &TestApp) {
    let before = snapshot(app).await;
    let response = app
        .as_backend(
            &app.tenant,
            Method::PUT,
            &format!("Notifications/users/{OLD}/update-id"),
        )
        .json(&json!({ "newUserId": NEW }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"].clone();
    let body = json_body(response).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(
        snapshot(app).await,
        before,
        "a refused rename changes nothing"
    );
}

#[tokio::test]
async fn onto_an_id_in_the_same_broadcast_audience() {
    let app = TestApp::spawn().await;
    let broadcast = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO broadcast_recipients (tenant_id, broadcast_id, user_id) \
         VALUES ($1, $2, $3), ($1, $2, $4)",
    )
    .bind(app.tenant.id)
    .bind(broadcast)
    .bind(OLD)
    .bind(NEW)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_refused(&app).await;
}

#[tokio::test]
async fn onto_an_id_with_the_same_broadcasts_notification() {
    let app = TestApp::spawn().await;
    let broadcast = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications (tenant_id, id, user_id, subject, message, type, priority, \
         status, created_at, sent_at, broadcast_id) \
         SELECT $1, gen_random_uuid(), u, 'S', 'M', 'SystemAnnouncement', 1, 'Sent', now(), \
         now(), $2 FROM unnest(ARRAY[$3, $4]) AS u",
    )
    .bind(app.tenant.id)
    .bind(broadcast)
    .bind(OLD)
    .bind(NEW)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_refused(&app).await;
}

#[tokio::test]
async fn onto_an_id_with_a_recipient_profile() {
    let app = TestApp::spawn().await;
    for user in [OLD, NEW] {
        app.put_recipient(&app.tenant, user, json!({ "email": "x@example.com" }))
            .await;
    }
    assert_refused(&app).await;
}

#[tokio::test]
async fn onto_an_id_subscribed_to_the_same_topic() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let users = [OLD.to_owned(), NEW.to_owned()];
    app.subscribe(&app.tenant, topic["id"].as_str().unwrap(), &users)
        .await;
    assert_refused(&app).await;
}

#[tokio::test]
async fn onto_an_id_with_the_same_idempotency_key() {
    let app = TestApp::spawn().await;
    for user in [OLD, NEW] {
        let token = app.token_for(&app.tenant, user).await;
        let response = app
            .as_user(&app.tenant, &token, Method::POST, "Notifications")
            .header("Idempotency-Key", "same-key")
            .json(&json!({ "subject": "S", "message": "M" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    assert_refused(&app).await;
}

#[tokio::test]
async fn onto_a_member_of_the_same_chat() {
    let app = TestApp::spawn().await;
    let chat = app.create_group(OLD, &[NEW]).await;
    app.send_message(&chat, OLD, "hello").await;
    assert_refused(&app).await;
}

#[tokio::test]
async fn onto_an_id_with_a_direct_chat_with_the_same_user() {
    let app = TestApp::spawn().await;
    for user in [OLD, NEW] {
        app.create_chat(
            &of(user),
            json!({ "type": "Direct", "memberIds": ["carol"] }),
        )
        .await;
    }
    assert_refused(&app).await;
}
