//! The delivery pipeline's fault tolerance: jobs Redis lost, backlogs under a short sweep
//! interval, PostgreSQL refusing connections mid-send, and workers riding through Redis losing
//! everything or going away — all against the real processes.

use std::time::{Duration, Instant};

use herald_shared::jobs::Queue;
use herald_tests::TestApp;
use herald_tests::broadcasts::{
    FAST_SCHEDULER, broadcast, rows_of, template, users, wait_for_status,
};
use herald_tests::process::HeraldProcess;
use herald_tests::redis_server::RedisServer;
use herald_tests::smtp::{SmtpBehaviour, SmtpServer};
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// How many jobs of `queue` Redis holds: (stored job data, ids waiting in the active list and
/// the scheduled set).
async fn jobs_in(app: &TestApp, queue: Queue) -> (usize, usize) {
    let config = queue.config(&app.redis_prefix);
    let mut redis = redis_conn(&app.redis_url).await;
    let data: usize = redis::cmd("HLEN")
        .arg(config.job_data_hash())
        .query_async(&mut redis)
        .await
        .unwrap();
    let active: usize = redis::cmd("LLEN")
        .arg(config.active_jobs_list())
        .query_async(&mut redis)
        .await
        .unwrap();
    let scheduled: usize = redis::cmd("ZCARD")
        .arg(config.scheduled_jobs_set())
        .query_async(&mut redis)
        .await
        .unwrap();
    (data, active + scheduled)
}

/// Waits until `process` has logged `needle` at least `times` times.
async fn wait_for_log(process: &HeraldProcess, needle: &str, times: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while process.logs().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "{needle:?} not logged {times} times in {timeout:?}:\n{}",
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_sent(app: &TestApp, notification: &Value, timeout: Duration) -> Value {
    app.wait_for_notification(&app.tenant, &id(notification), timeout, |n| {
        n["status"] == "Sent"
    })
    .await
}

#[tokio::test]
async fn scheduled_work_whose_job_redis_lost_still_runs_exactly_once() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", &url)]).await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    // Due within the minute: the API marks each schedule record `Queued` and pushes a timed job…
    let due = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    let notification = app
        .notify(&app.tenant, "alice", json!({ "scheduledFor": due }))
        .await;
    let mass = broadcast(
        &app,
        template(json!({ "userIds": users(30), "scheduledFor": due })),
    )
    .await;
    assert_eq!(mass["status"], "Scheduled", "{mass}");
    // …which Redis loses before it comes due, with every worker registration: only the sweep
    // can start them now. The workers run throughout (none is restarted after the flush), and
    // take new work as before.
    redis.flush_all().await;
    let immediate = app.notify(&app.tenant, "alice", json!({})).await;
    wait_sent(&app, &immediate, Duration::from_secs(30)).await;
    wait_sent(&app, &notification, Duration::from_secs(30)).await;
    wait_for_status(&app, &id(&mass), "Completed", Duration::from_secs(30)).await;
    assert_eq!(rows_of(&app, &id(&mass)).await, (30, 30));
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM schedules ORDER BY kind")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(states, ["Done", "Done"], "both schedule records finished");
    // Later sweeps leave them alone: still one row per recipient.
    wait_for_log(&scheduler, "swept stalled work", 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rows_of(&app, &id(&mass)).await, (30, 30));
}

#[tokio::test]
async fn work_claimed_by_a_scheduler_that_died_before_pushing_still_runs_once() {
    let app = TestApp::spawn().await;
    // Far enough ahead that the API leaves them to the scheduler (records `Pending`, no job).
    let later = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let notification = app
        .notify(&app.tenant, "alice", json!({ "scheduledFor": later }))
        .await;
    let mass = broadcast(
        &app,
        template(json!({ "userIds": users(30), "scheduledFor": later })),
    )
    .await;
    // Exactly what a scheduler killed between its claim's commit and its push leaves behind:
    // records claimed (`Queued`), now due, and no job anywhere.
    sqlx::query("UPDATE schedules SET state = 'Queued', due_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE notifications SET scheduled_for = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE broadcasts SET scheduled_for = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let _fanout = app.start("herald-fanout", &[]).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    wait_sent(&app, &notification, Duration::from_secs(30)).await;
    wait_for_status(&app, &id(&mass), "Completed", Duration::from_secs(30)).await;
    assert_eq!(rows_of(&app, &id(&mass)).await, (30, 30));
}

#[tokio::test]
async fn a_chat_broadcast_whose_job_redis_lost_completes_after_the_sweep() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", &url)]).await;
    let targets: Vec<String> = (0..20).map(|i| format!("user-{i:05}")).collect();
    let response = app
        .as_user_of(&app.tenant, "sender", Method::POST, "Chat/broadcast")
        .json(&json!({ "userIds": targets, "message": "Hello all" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let created = json_body(response).await;
    // No worker yet: the job waits in Redis, which then loses it.
    redis.flush_all().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    let done = app
        .wait_for_chat_broadcast("sender", &id(&created), Duration::from_secs(30))
        .await;
    assert_eq!(done["sent"], 20, "{done}");
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE broadcast_id = $1::uuid")
            .bind(id(&created))
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(messages, 20);
}

#[tokio::test]
async fn a_backlog_swept_many_times_keeps_one_job_per_notification_and_delivers_each_once() {
    const BACKLOG: usize = 300;
    let app = TestApp::spawn().await;
    let mut events = app.listen(&app.tenant, "alice").await;
    // The fan-out is stopped: every notification stays pending with its job waiting.
    let mut created = Vec::new();
    for _ in 0..BACKLOG {
        created.push(app.notify(&app.tenant, "alice", json!({})).await);
    }
    let scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    // Each tick (one a second, sweeping anything older than a second) sees the whole backlog.
    wait_for_log(&scheduler, "swept stalled work", 8, Duration::from_secs(60)).await;
    let (data, waiting) = jobs_in(&app, Queue::Deliver).await;
    assert_eq!(data, BACKLOG, "one stored job per pending notification");
    assert_eq!(
        waiting, BACKLOG,
        "one waiting job id per pending notification"
    );

    let _fanout = app.start("herald-fanout", &[]).await;
    for notification in &created {
        wait_sent(&app, notification, Duration::from_secs(60)).await;
    }
    let mut seen = std::collections::HashMap::<String, usize>::new();
    while let Some(event) = events.next_within(Duration::from_secs(3)).await {
        *seen.entry(id(&event)).or_default() += 1;
    }
    assert_eq!(seen.len(), BACKLOG, "every notification announced");
    assert!(seen.values().all(|&n| n == 1), "each announced once");
}

#[tokio::test]
async fn an_email_sent_while_postgres_refuses_connections_is_recorded_sent_once() {
    let smtp = SmtpServer::start(SmtpBehaviour::AcceptAfter(Duration::from_secs(2)));
    let app = TestApp::spawn().await;
    let url = smtp.url();
    let _fanout = app.start("herald-fanout", &[]).await;
    let email = app.start("herald-email", &[("SMTP_URL", &url)]).await;
    let created = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "email": "alice@example.com" }),
        )
        .await;
    // Claimed: the worker is now waiting on the slow mail server.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM deliveries WHERE notification_id = $1::uuid")
                .bind(id(&created))
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if state.as_deref() == Some("Sending") {
            break;
        }
        assert!(Instant::now() < deadline, "email never claimed: {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // PostgreSQL goes away for the worker: new connections refused, open ones cut.
    let mut admin = PgConnection::connect(&herald_tests::pg_admin_url())
        .await
        .unwrap();
    let name = &app.db.name;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )))
        .await
        .unwrap();
    // The send succeeds; recording it fails at least twice while the database refuses.
    smtp.wait_for(1, Duration::from_secs(20)).await;
    wait_for_log(
        &email,
        "is not currently accepting connections",
        2,
        Duration::from_secs(20),
    )
    .await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
        )))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: String =
            sqlx::query_scalar("SELECT state FROM deliveries WHERE notification_id = $1::uuid")
                .bind(id(&created))
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if state == "Sent" {
            break;
        }
        assert_ne!(state, "Failed", "a sent email was recorded Failed");
        assert!(Instant::now() < deadline, "email still {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.received().len(), 1, "sent exactly once");
}

/// Posts a notification with an email for `user`; the API answers 201 whatever Redis does.
async fn notify_with_email(app: &TestApp, user: &str) -> Value {
    app.notify(
        &app.tenant,
        user,
        json!({ "email": format!("{user}@example.com") }),
    )
    .await
}

/// Waits until `count` emails arrived and every notification is `Sent`.
async fn wait_delivered(app: &TestApp, smtp: &SmtpServer, created: &[Value], count: usize) {
    for notification in created {
        wait_sent(app, notification, Duration::from_secs(60)).await;
    }
    smtp.wait_for(count, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn workers_ride_through_redis_losing_everything_and_going_away() {
    let smtp = SmtpServer::start(SmtpBehaviour::Accept);
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", &url)]).await;
    let smtp_url = smtp.url();
    let mut fanout = app.start("herald-fanout", &[]).await;
    let mut email = app
        .start(
            "herald-email",
            &[
                ("SMTP_URL", &smtp_url),
                ("HERALD_EMAIL_BACKOFF_BASE_MS", "50"),
            ],
        )
        .await;
    let mut scheduler = app.start("herald-scheduler", &FAST_SCHEDULER).await;
    let mut created = vec![notify_with_email(&app, "alice").await];
    wait_delivered(&app, &smtp, &created, 1).await;

    // Redis forgets every worker registration and job.
    redis.flush_all().await;
    created.push(notify_with_email(&app, "bob").await);
    wait_delivered(&app, &smtp, &created, 2).await;

    // Redis goes away for a minute; the API keeps accepting work meanwhile.
    redis.stop();
    created.push(notify_with_email(&app, "carol").await);
    tokio::time::sleep(Duration::from_secs(60)).await;
    created.push(notify_with_email(&app, "dave").await);
    redis = RedisServer::start_on(port).await;
    created.push(notify_with_email(&app, "erin").await);
    wait_delivered(&app, &smtp, &created, 5).await;

    // The same processes did it all, and each email went out once.
    for process in [&mut fanout, &mut email, &mut scheduler] {
        assert!(
            process.wait_exit(Duration::from_millis(10)).await.is_none(),
            "a worker exited:\n{}",
            process.logs()
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut to: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| m["to"][0].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["alice", "bob", "carol", "dave", "erin"].map(|u| format!("{u}@example.com"))
    );
    drop(redis);
}
