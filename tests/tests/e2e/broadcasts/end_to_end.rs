//! Broadcasts, scheduling and recovery, against the real workers. What Redis losing its jobs
//! does to them is in `pipeline::faults`.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::broadcasts::{
    FAST_SCHEDULER, broadcast, cancel, rows_of, template, users, wait_for_first_rows,
    wait_for_status,
};
use herald_tests::smtp::{SmtpBehaviour, SmtpServer};
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_broadcast_to_ten_thousand_users_gives_each_exactly_one_notification() {
    let app = TestApp::spawn().await;
    let _fanout = app
        .start("herald-fanout", &[("HERALD_FANOUT_CHUNK_SIZE", "1000")])
        .await;
    let mut events = app.listen(&app.tenant, "user-00042").await;
    let created = broadcast(&app, template(json!({ "userIds": users(10_000) }))).await;
    assert!(matches!(
        created["status"].as_str(),
        Some("Queued" | "FanningOut")
    ));
    let id = created["id"].as_str().unwrap();
    let done = wait_for_status(&app, id, "Completed", Duration::from_secs(60)).await;
    assert_eq!(
        (done["totalRecipients"].as_i64(), done["delivered"].as_i64()),
        (Some(10_000), Some(10_000))
    );
    assert!(done["completedAt"].is_string() && done["startedAt"].is_string());
    assert_eq!(rows_of(&app, id).await, (10_000, 10_000));

    let event = events.next().await;
    assert_eq!(event["type"], "Message");
    let token = app.token_for(&app.tenant, "user-00042").await;
    let inbox = app
        .as_user(
            &app.tenant,
            &token,
            Method::GET,
            &format!("Notifications?broadcastId={id}"),
        )
        .send()
        .await
        .unwrap();
    let inbox = json_body(inbox).await;
    assert_eq!(inbox["totalCount"], 1);
    assert_eq!(inbox["data"][0]["id"], event["id"]);
    assert_eq!(inbox["data"][0]["status"], "Sent");
}

#[tokio::test]
async fn killing_the_fanout_worker_mid_broadcast_loses_and_duplicates_nothing() {
    let app = TestApp::spawn().await;
    let small_chunks = ("HERALD_FANOUT_CHUNK_SIZE", "250");
    let mut fanout = app.start("herald-fanout", &[small_chunks]).await;
    let created = broadcast(&app, template(json!({ "userIds": users(10_000) }))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // Kill it (no chance to clean up) once some but not all chunks are written.
    wait_for_first_rows(&app, &id, None).await;
    fanout.kill();
    let (at_kill, _) = rows_of(&app, &id).await;
    assert!(
        at_kill < 10_000,
        "too fast to interrupt; use smaller chunks"
    );
    // A new worker (and the scheduler's sweep, for a job lost with the dead worker) finish it.
    let _fanout = app.start("herald-fanout", &[small_chunks]).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    let done = wait_for_status(&app, &id, "Completed", Duration::from_secs(60)).await;
    assert_eq!(done["delivered"], 10_000, "killed at {at_kill}");
    assert_eq!(rows_of(&app, &id).await, (10_000, 10_000));
}

/// A recipient renamed mid-broadcast onto an id the fan-out has not reached yet already holds
/// the broadcast's notification under the new id: the chunk that reaches it must not write a
/// second one (the fan-out's careful path, taken only when a chunk's range holds such a row).
#[tokio::test]
async fn a_recipient_renamed_mid_broadcast_gets_it_once() {
    let app = TestApp::spawn().await;
    let small_chunks = ("HERALD_FANOUT_CHUNK_SIZE", "250");
    let mut fanout = app.start("herald-fanout", &[small_chunks]).await;
    let created = broadcast(&app, template(json!({ "userIds": users(10_000) }))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // Stop the fan-out once user-00000 has it (the first chunk of the first lane).
    wait_for_first_rows(&app, &id, Some("user-00000")).await;
    fanout.kill();
    assert!(rows_of(&app, &id).await.0 < 10_000, "too fast to interrupt");
    let (status, renamed) = app
        .backend_call(
            &app.tenant,
            Method::PUT,
            "Notifications/users/user-00000/update-id",
            Some(json!({ "newUserId": "user-99999" })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["updated"]["notifications"], 1, "{renamed}");

    let _fanout = app.start("herald-fanout", &[small_chunks]).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    let done = wait_for_status(&app, &id, "Completed", Duration::from_secs(60)).await;
    assert_eq!(done["delivered"], 10_000);
    assert_eq!(rows_of(&app, &id).await, (10_000, 10_000));
    let renamed_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE broadcast_id = $1::uuid AND user_id = 'user-99999'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(renamed_rows, 1);
}

#[tokio::test]
async fn a_cancelled_scheduled_broadcast_creates_nothing() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    let when = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    let created = broadcast(
        &app,
        template(json!({ "userIds": users(50), "scheduledFor": when })),
    )
    .await;
    assert_eq!(created["status"], "Scheduled");
    let id = created["id"].as_str().unwrap();
    cancel(&app, id).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rows_of(&app, id).await, (0, 0));
    let still = app
        .as_backend(&app.tenant, Method::GET, &format!("Broadcasts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(still).await["status"], "Cancelled");
}

#[tokio::test]
async fn a_scheduled_broadcast_starts_at_its_time() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let when = chrono::Utc::now() + chrono::Duration::seconds(2);
    let created = broadcast(
        &app,
        template(json!({ "userIds": users(20), "scheduledFor": when.to_rfc3339() })),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(rows_of(&app, id).await, (0, 0));
    let done = wait_for_status(&app, id, "Completed", Duration::from_secs(10)).await;
    let started =
        chrono::DateTime::parse_from_rfc3339(done["startedAt"].as_str().unwrap()).unwrap();
    assert!(
        started >= when - chrono::Duration::seconds(1),
        "started early: {started} < {when}"
    );
    assert_eq!(rows_of(&app, id).await, (20, 20));
}

#[tokio::test]
async fn topic_and_all_user_audiences_reach_each_member_once_with_email() {
    let smtp = SmtpServer::start(SmtpBehaviour::Accept);
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app
        .start("herald-email", &[("SMTP_URL", &smtp.url())])
        .await;
    let tenant = app.tenant.id;
    sqlx::query(
        "INSERT INTO recipients (tenant_id, user_id, email, email_opt_out) VALUES \
         ($1, 'ann', 'ann@example.com', '{}'), ($1, 'ben', 'ben@example.com', '{SystemAnnouncement}'), ($1, 'cat', NULL, '{}')",
    )
    .bind(tenant)
    .execute(&app.pool)
    .await
    .unwrap();
    let (news, ops) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    sqlx::query(
        "INSERT INTO topics (tenant_id, id, name) VALUES ($1, $2, 'news'), ($1, $3, 'ops')",
    )
    .bind(tenant)
    .bind(news)
    .bind(ops)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO topic_subscriptions (tenant_id, topic_id, user_id) VALUES \
         ($1, $2, 'ann'), ($1, $2, 'ben'), ($1, $3, 'ann'), ($1, $3, 'dan')",
    )
    .bind(tenant)
    .bind(news)
    .bind(ops)
    .execute(&app.pool)
    .await
    .unwrap();

    let by_topic = broadcast(
        &app,
        template(json!({ "topicIds": [news, ops], "email": true })),
    )
    .await;
    let id = by_topic["id"].as_str().unwrap();
    let done = wait_for_status(&app, id, "Completed", Duration::from_secs(10)).await;
    assert_eq!(done["delivered"], 3, "ann, ben and dan, ann only once");
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        mails[0]["to"],
        json!(["ann@example.com"]),
        "ben opted out, dan has no address"
    );
    // The sink has the mail a moment before the worker records it as sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let done = wait_for_status(&app, id, "Completed", Duration::from_secs(1)).await;
        if done["emailed"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "emailed never 1: {done}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let everyone = broadcast(&app, template(json!({ "allUsers": true }))).await;
    let id = everyone["id"].as_str().unwrap();
    wait_for_status(&app, id, "Completed", Duration::from_secs(10)).await;
    let mut reached: Vec<String> = sqlx::query_scalar(
        "SELECT user_id FROM notifications WHERE broadcast_id = $1::uuid ORDER BY user_id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    reached.sort();
    assert_eq!(reached, ["ann", "ben", "cat"]);

    let unknown = app
        .as_backend(&app.tenant, Method::POST, "Broadcasts")
        .json(&template(json!({ "topicIds": [uuid::Uuid::now_v7()] })))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(json_body(unknown).await["errors"]["topicIds"].is_array());
}

#[tokio::test]
async fn broadcast_requests_are_validated_and_idempotent() {
    let app = TestApp::spawn().await;
    let bad = [
        (
            template(json!({ "userIds": ["a"], "allUsers": true })),
            "audience",
        ),
        (template(json!({})), "audience"),
        (template(json!({ "userIds": [] })), "userIds"),
        (
            template(json!({ "userIds": ["ok", "not ok"] })),
            "userIds[1]",
        ),
        (template(json!({ "userIds": users(10_001) })), "userIds"),
        (
            json!({ "userIds": ["a"], "message": "m", "type": "UserInvite" }),
            "subject",
        ),
        (
            template(json!({ "userIds": ["a"], "scheduledFor": "2020-01-01T00:00:00Z" })),
            "scheduledFor",
        ),
    ];
    for (body, field) in bad {
        let response = app
            .as_backend(&app.tenant, Method::POST, "Broadcasts")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let problem = json_body(response).await;
        assert_eq!(status, 400, "{field}: {problem}");
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
    let send = || {
        app.as_backend(&app.tenant, Method::POST, "Broadcasts")
            .header("Idempotency-Key", "launch-email")
            .json(&template(json!({ "userIds": ["a", "b"] })))
            .send()
    };
    let first = json_body(send().await.unwrap()).await;
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(again).await["id"], first["id"]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM broadcasts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);

    let page = app
        .as_backend(&app.tenant, Method::GET, "Broadcasts?pageSize=1")
        .send()
        .await
        .unwrap();
    let page = json_body(page).await;
    assert_eq!(page["data"][0]["id"], first["id"]);
    // Keyset pages, newest first, each broadcast once.
    let second = broadcast(&app, template(json!({ "userIds": ["b"] }))).await;
    let third = broadcast(&app, template(json!({ "userIds": ["c"] }))).await;
    let (mut seen, mut query) = (Vec::new(), "Broadcasts?pageSize=1".to_owned());
    loop {
        let (status, page) = app
            .backend_call(&app.tenant, Method::GET, &query, None)
            .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].clone()),
        );
        match page["nextBefore"].as_str() {
            Some(next) => query = format!("Broadcasts?pageSize=1&before={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [&third["id"], &second["id"], &first["id"]].map(Value::clone)
    );
    let token = app.token_for(&app.tenant, "a").await;
    let as_user = app
        .as_user(&app.tenant, &token, Method::GET, "Broadcasts")
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), 401, "broadcasts are for the backend");
    let other = app.create_tenant("globex").await;
    let foreign = app
        .as_backend(
            &other,
            Method::GET,
            &format!("Broadcasts/{}", first["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
}

#[tokio::test]
async fn a_notification_scheduled_three_seconds_ahead_arrives_within_a_second_of_its_time() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut events = app.listen(&app.tenant, "alice").await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(3);
    let created = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "scheduledFor": due.to_rfc3339() }),
        )
        .await;
    let event = events
        .next_within(Duration::from_secs(10))
        .await
        .expect("delivered");
    let arrived = chrono::Utc::now();
    assert_eq!(event["id"], created["id"]);
    assert!(arrived >= due, "delivered early: {arrived} < {due}");
    assert!(
        arrived - due < chrono::Duration::seconds(1),
        "delivered {} ms late",
        (arrived - due).num_milliseconds()
    );
}

#[tokio::test]
async fn several_schedulers_queue_each_due_item_once() {
    let app = TestApp::spawn().await;
    // Schedule records due now, written directly as the API would for times a minute ahead.
    let mut ids = Vec::new();
    for _ in 0..20 {
        let later = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
        let n = app
            .notify(&app.tenant, "alice", json!({ "scheduledFor": later }))
            .await;
        ids.push(n["id"].as_str().unwrap().to_owned());
    }
    sqlx::query("UPDATE schedules SET due_at = now(), state = 'Pending'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE notifications SET scheduled_for = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut events = app.listen(&app.tenant, "alice").await;
    let _schedulers = [
        app.start("herald-scheduler", &FAST_SCHEDULER).await,
        app.start("herald-scheduler", &FAST_SCHEDULER).await,
        app.start("herald-scheduler", &FAST_SCHEDULER).await,
    ];
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut seen = std::collections::HashMap::<String, usize>::new();
    while let Some(event) = events.next_within(Duration::from_secs(3)).await {
        *seen
            .entry(event["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 20, "every due notification delivered");
    assert!(
        seen.values().all(|&n| n == 1),
        "each delivered once: {seen:?}"
    );
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM schedules WHERE state = 'Done'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queued, 20);
}
