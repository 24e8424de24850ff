//! Broadcast helpers shared by the broadcast test files.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestApp;
use crate::test_app::json_body;

/// `herald-scheduler` settings for fast ticks and sweeps, so recovery shows within seconds.
pub const FAST_SCHEDULER: [(&str, &str); 2] = [
    ("HERALD_SCHEDULER_CRON", "* * * * * *"),
    ("HERALD_SWEEP_AFTER_SECS", "1"),
];

/// `POST /Broadcasts` with the tenant's key; asserts 202.
pub async fn broadcast(app: &TestApp, body: Value) -> Value {
    let response = app
        .as_backend(&app.tenant, Method::POST, "Broadcasts")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 202, "{body}");
    body
}

/// Polls `GET /Broadcasts/{id}` until it shows `status`.
pub async fn wait_for_status(app: &TestApp, id: &str, status: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let response = app
            .as_backend(&app.tenant, Method::GET, &format!("Broadcasts/{id}"))
            .send()
            .await
            .unwrap();
        let body = json_body(response).await;
        if body["status"] == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "not {status} after {timeout:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The broadcast's inbox rows: (all, distinct recipients).
pub async fn rows_of(app: &TestApp, broadcast_id: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT user_id) FROM notifications WHERE broadcast_id = $1::uuid",
    )
    .bind(broadcast_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// `user-00000`, `user-00001`, …
pub fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i:05}")).collect()
}

/// A broadcast body: a notification template plus `extra` (the audience, …).
pub fn template(extra: Value) -> Value {
    let mut body = json!({ "subject": "Maintenance tonight", "message": "We will be down at 2 AM.", "type": "SystemAnnouncement" });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// Waits (30 s at most) until the broadcast has written inbox rows, including one for `user`
/// when given; returns how many rows it has then.
pub async fn wait_for_first_rows(app: &TestApp, id: &str, user: Option<&str>) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (written, for_user): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE $2::text IS NULL OR user_id = $2) \
             FROM notifications WHERE broadcast_id = $1::uuid",
        )
        .bind(id)
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if for_user > 0 {
            return written;
        }
        assert!(Instant::now() < deadline, "fan-out never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `POST /Broadcasts/{id}/cancel`; asserts it answers 200 with the broadcast `Cancelled`.
pub async fn cancel(app: &TestApp, id: &str) -> Value {
    let (status, cancelled) = app
        .backend_call(
            &app.tenant,
            Method::POST,
            &format!("Broadcasts/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!((status, &cancelled["status"]), (200, &json!("Cancelled")));
    cancelled
}
