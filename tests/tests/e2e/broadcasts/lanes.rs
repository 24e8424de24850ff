//! Lanes: a large broadcast's audience split at user-id boundaries and fanned out side by side,
//! by one worker's concurrent jobs or by several `herald-fanout` processes.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::broadcasts::{
    broadcast, cancel, rows_of, template, users, wait_for_first_rows, wait_for_status,
};
use serde_json::json;
use uuid::Uuid;

/// (lane, cursor, upper bound, done) of each lane, in order.
async fn lanes_of(app: &TestApp, id: &str) -> Vec<(i16, String, Option<String>, bool)> {
    sqlx::query_as(
        "SELECT lane, cursor, upper_bound, done FROM broadcast_lanes WHERE broadcast_id = $1::uuid ORDER BY lane",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn lane(n: i16, cursor: &str, upper: Option<&str>) -> (i16, String, Option<String>, bool) {
    (n, cursor.to_owned(), upper.map(str::to_owned), true)
}

#[tokio::test]
async fn two_fanout_workers_write_a_broadcast_in_lanes_exactly_once() {
    let app = TestApp::spawn().await;
    let settings = [
        ("HERALD_FANOUT_CHUNK_SIZE", "500"),
        ("HERALD_FANOUT_LANES", "4"),
    ];
    let _first = app.start("herald-fanout", &settings).await;
    let _second = app.start("herald-fanout", &settings).await;
    let created = broadcast(&app, template(json!({ "userIds": users(10_000) }))).await;
    let id = created["id"].as_str().unwrap();
    let done = wait_for_status(&app, id, "Completed", Duration::from_secs(60)).await;
    assert_eq!(
        (done["totalRecipients"].as_i64(), done["delivered"].as_i64()),
        (Some(10_000), Some(10_000))
    );
    assert_eq!(rows_of(&app, id).await, (10_000, 10_000));
    // Four equal ranges, each written to its end.
    assert_eq!(
        lanes_of(&app, id).await,
        [
            lane(0, "user-02499", Some("user-02499")),
            lane(1, "user-04999", Some("user-04999")),
            lane(2, "user-07499", Some("user-07499")),
            lane(3, "user-09999", None),
        ]
    );
}

#[tokio::test]
async fn a_topic_audience_splits_into_lanes_of_distinct_subscribers() {
    let app = TestApp::spawn().await;
    let _fanout = app
        .start(
            "herald-fanout",
            &[
                ("HERALD_FANOUT_CHUNK_SIZE", "500"),
                ("HERALD_FANOUT_LANES", "3"),
            ],
        )
        .await;
    let (news, ops) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query(
        "INSERT INTO topics (tenant_id, id, name) VALUES ($1, $2, 'news'), ($1, $3, 'ops')",
    )
    .bind(app.tenant.id)
    .bind(news)
    .bind(ops)
    .execute(&app.pool)
    .await
    .unwrap();
    // 3,000 subscribers, the first 1,000 of them in both topics.
    sqlx::query(
        "INSERT INTO topic_subscriptions (tenant_id, topic_id, user_id) \
         SELECT $1, $2, 'user-' || lpad(g::text, 5, '0') FROM generate_series(0, 2999) g \
         UNION ALL SELECT $1, $3, 'user-' || lpad(g::text, 5, '0') FROM generate_series(0, 999) g",
    )
    .bind(app.tenant.id)
    .bind(news)
    .bind(ops)
    .execute(&app.pool)
    .await
    .unwrap();
    let created = broadcast(&app, template(json!({ "topicIds": [news, ops] }))).await;
    let id = created["id"].as_str().unwrap();
    let done = wait_for_status(&app, id, "Completed", Duration::from_secs(30)).await;
    assert_eq!(done["delivered"], 3_000);
    assert_eq!(rows_of(&app, id).await, (3_000, 3_000));
    assert_eq!(
        lanes_of(&app, id).await,
        [
            lane(0, "user-00999", Some("user-00999")),
            lane(1, "user-01999", Some("user-01999")),
            lane(2, "user-02999", None),
        ]
    );
}

#[tokio::test]
async fn cancelling_mid_fan_out_stops_every_lane() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO recipients (tenant_id, user_id) \
         SELECT $1, 'user-' || lpad(g::text, 5, '0') FROM generate_series(0, 39999) g",
    )
    .bind(app.tenant.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let _fanout = app
        .start(
            "herald-fanout",
            &[
                ("HERALD_FANOUT_CHUNK_SIZE", "100"),
                ("HERALD_FANOUT_LANES", "4"),
            ],
        )
        .await;
    let created = broadcast(&app, template(json!({ "allUsers": true }))).await;
    let id = created["id"].as_str().unwrap();
    wait_for_first_rows(&app, id, None).await;
    cancel(&app, id).await;
    // Chunks in flight finished before the cancel answered; none is written after it.
    let (at_cancel, _) = rows_of(&app, id).await;
    assert!(at_cancel < 40_000, "too fast to interrupt");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rows_of(&app, id).await, (at_cancel, at_cancel));
    let after = wait_for_status(&app, id, "Cancelled", Duration::from_secs(1)).await;
    assert_eq!(after["delivered"].as_i64(), Some(at_cancel));
}
