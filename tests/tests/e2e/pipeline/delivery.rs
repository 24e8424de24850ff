//! The delivery pipeline end to end: herald-api, herald-fanout, herald-email and
//! herald-scheduler against real PostgreSQL, Redis and an SMTP server.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::smtp::{SmtpBehaviour, SmtpServer};
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::json;

const LOW_BACKOFF: (&str, &str) = ("HERALD_EMAIL_BACKOFF_BASE_MS", "50");

fn id(notification: &serde_json::Value) -> String {
    notification["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_created_notification_is_delivered_and_announced() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut events = app.listen(&app.tenant, "alice").await;
    let created = app.notify(&app.tenant, "alice", json!({})).await;

    let event = events.next().await;
    assert_eq!(event["type"], "Message");
    assert_eq!(event["id"], created["id"]);
    assert!(event["parentId"].is_null());
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(event["createdAt"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(created["createdAt"].as_str().unwrap()).unwrap()
    );
    let sent = app
        .wait_for_notification(&app.tenant, &id(&created), Duration::from_secs(5), |n| {
            n["status"] == "Sent"
        })
        .await;
    assert!(sent["sentAt"].is_string());
}

#[tokio::test]
async fn an_email_reaches_the_smtp_server_exactly_once() {
    let smtp = SmtpServer::start(SmtpBehaviour::Accept);
    let app = TestApp::spawn().await;
    let url = smtp.url();
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app.start("herald-email", &[("SMTP_URL", &url)]).await;
    let _second_email_worker = app.start("herald-email", &[("SMTP_URL", &url)]).await;

    let created = app
        .notify(
            &app.tenant,
            "alice",
            json!({
                "subject": "Your invoice",
                "message": "Invoice 42 is ready.",
                "htmlContent": "<p>Invoice <strong>42</strong> is ready.</p>",
                "email": "alice@example.com"
            }),
        )
        .await;
    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    let mail = &received[0];
    assert_eq!(mail["to"], json!(["alice@example.com"]));
    assert_eq!(mail["subject"], "Your invoice");
    assert_eq!(mail["contentType"], "multipart/alternative");
    assert_eq!(
        mail["text"].as_str().unwrap().trim(),
        "Invoice 42 is ready."
    );
    assert!(
        mail["html"]
            .as_str()
            .unwrap()
            .contains("<strong>42</strong>")
    );

    // A duplicate job (as after a lost acknowledgement) sends nothing more.
    app.start("herald-fanout", &[]).await; // a second fan-out worker changes nothing either
    let queues = herald_shared::jobs::Queues::new(
        herald_shared::redis_conn::connect(&herald_shared::config::RedisConfig {
            url: herald_tests::redis_url(),
            prefix: app.redis_prefix.clone(),
        })
        .await
        .unwrap(),
        &app.redis_prefix,
    );
    let notification_id = uuid::Uuid::parse_str(&id(&created)).unwrap();
    queues
        .dispatch(vec![herald_shared::jobs::Dispatch::from(
            herald_shared::db::deliveries::DeliveryKey::own_email(app.tenant.id, notification_id),
        )])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.received().len(), 1, "exactly once");
    let state: String =
        sqlx::query_scalar("SELECT state FROM deliveries WHERE notification_id = $1")
            .bind(notification_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state, "Sent");
}

#[tokio::test]
async fn transient_smtp_failures_are_retried_until_delivered() {
    let smtp = SmtpServer::start(SmtpBehaviour::FailTransient(2));
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app
        .start("herald-email", &[("SMTP_URL", &smtp.url()), LOW_BACKOFF])
        .await;
    let created = app
        .notify(&app.tenant, "bob", json!({ "email": "bob@example.com" }))
        .await;
    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0]["attempt"], 3, "delivered on the third attempt");
    let done = app
        .wait_for_notification(&app.tenant, &id(&created), Duration::from_secs(5), |n| {
            n["retryCount"] == 2
        })
        .await;
    assert_eq!(done["status"], "Sent");
    assert!(
        done["errorMessage"].as_str().unwrap().contains("451"),
        "{done}"
    );
}

#[tokio::test]
async fn a_permanent_smtp_rejection_fails_at_once() {
    let smtp = SmtpServer::start(SmtpBehaviour::FailPermanent);
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app
        .start("herald-email", &[("SMTP_URL", &smtp.url()), LOW_BACKOFF])
        .await;
    let created = app
        .notify(
            &app.tenant,
            "carol",
            json!({ "email": "nobody@example.com" }),
        )
        .await;
    let failed = app
        .wait_for_notification(&app.tenant, &id(&created), Duration::from_secs(10), |n| {
            n["status"] == "Failed"
        })
        .await;
    assert!(
        failed["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Mailbox unavailable"),
        "{failed}"
    );
    assert_eq!(failed["retryCount"], 0);
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM deliveries WHERE notification_id = $1::uuid")
            .bind(id(&created))
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "no retry after a 5xx");
    let listed = app
        .as_backend(
            &app.tenant,
            Method::GET,
            "Notifications/analytics/failed-notifications",
        )
        .send()
        .await
        .unwrap();
    let listed = json_body(listed).await;
    assert_eq!(listed[0]["id"], created["id"]);
}

#[tokio::test]
async fn emails_that_keep_failing_stop_after_the_configured_attempts() {
    let smtp = SmtpServer::start(SmtpBehaviour::FailTransient(100));
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app
        .start(
            "herald-email",
            &[
                ("SMTP_URL", &smtp.url()),
                LOW_BACKOFF,
                ("HERALD_EMAIL_MAX_ATTEMPTS", "3"),
            ],
        )
        .await;
    let created = app
        .notify(&app.tenant, "dave", json!({ "email": "dave@example.com" }))
        .await;
    let failed = app
        .wait_for_notification(&app.tenant, &id(&created), Duration::from_secs(10), |n| {
            n["status"] == "Failed"
        })
        .await;
    assert_eq!(failed["retryCount"], 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM deliveries WHERE notification_id = $1::uuid")
            .bind(id(&created))
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn opted_out_recipients_get_the_inbox_notification_but_no_email() {
    let smtp = SmtpServer::start(SmtpBehaviour::Accept);
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app
        .start("herald-email", &[("SMTP_URL", &smtp.url())])
        .await;
    sqlx::query(
        "INSERT INTO recipients (tenant_id, user_id, email, email_opt_out) VALUES ($1, 'erin', 'erin@example.com', '{InactivityReminder}')",
    )
    .bind(app.tenant.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let skipped = app
        .notify(
            &app.tenant,
            "erin",
            json!({ "type": "InactivityReminder", "email": "erin@example.com" }),
        )
        .await;
    app.wait_for_notification(&app.tenant, &id(&skipped), Duration::from_secs(5), |n| {
        n["status"] == "Sent"
    })
    .await;
    app.notify(
        &app.tenant,
        "erin",
        json!({ "type": "PasswordReset", "subject": "Reset", "email": "erin@example.com" }),
    )
    .await;
    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(received[0]["subject"], "Reset");
}

#[tokio::test]
async fn finished_jobs_do_not_accumulate_in_redis() {
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(app.notify(&app.tenant, "alice", json!({})).await);
    }
    for notification in &created {
        app.wait_for_notification(
            &app.tenant,
            &id(notification),
            Duration::from_secs(5),
            |n| n["status"] == "Sent",
        )
        .await;
    }
    let config = herald_shared::jobs::Queue::Deliver.config(&app.redis_prefix);
    let mut redis = redis::Client::open(app.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let jobs: usize = redis::cmd("HLEN")
        .arg(config.job_data_hash())
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(jobs, 5, "apalis keeps finished jobs until vacuumed");
    let _scheduler = app
        .start(
            "herald-scheduler",
            &[("HERALD_SCHEDULER_CRON", "* * * * * *")],
        )
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let jobs: usize = redis::cmd("HLEN")
            .arg(config.job_data_hash())
            .query_async(&mut redis)
            .await
            .unwrap();
        if jobs == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{jobs} finished jobs still in Redis"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
