//! Emails whose worker died (`kill -9`) or was outlived by its claim in the middle of the SMTP
//! exchange: sent again exactly once when the server was never handed the message, never
//! again once the body may have gone.

use std::time::{Duration, Instant};

use herald_tests::TestApp;
use herald_tests::process::HeraldProcess;
use herald_tests::smtp::{SmtpBehaviour, SmtpServer};
use serde_json::{Value, json};

/// Ticks every second; a claim without `DATA` is taken back two seconds after it was made.
const FAST_SWEEP: [(&str, &str); 3] = [
    ("HERALD_SCHEDULER_CRON", "* * * * * *"),
    ("HERALD_SWEEP_AFTER_SECS", "1"),
    ("HERALD_EMAIL_LEASE_SECS", "2"),
];

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// Each delivery's (state, whether it reached DATA).
async fn deliveries(app: &TestApp, created: &[Value]) -> Vec<(String, bool)> {
    let ids: Vec<String> = created.iter().map(id).collect();
    sqlx::query_as(
        "SELECT state, data_started_at IS NOT NULL FROM deliveries \
         WHERE notification_id = ANY($1::uuid[]) ORDER BY notification_id",
    )
    .bind(&ids)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn wait_deliveries(
    app: &TestApp,
    created: &[Value],
    what: &str,
    done: impl Fn(&(String, bool)) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = deliveries(app, created).await;
        if rows.len() == created.len() && rows.iter().all(&done) {
            return;
        }
        assert!(Instant::now() < deadline, "not {what} in 60 s: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn notify_all(app: &TestApp, users: &[&str]) -> Vec<Value> {
    let mut created = Vec::new();
    for user in users {
        created.push(
            app.notify(
                &app.tenant,
                user,
                json!({ "email": format!("{user}@example.com"), "subject": format!("For {user}") }),
            )
            .await,
        );
    }
    created
}

/// Recipients of the messages the sink accepted, sorted.
fn recipients(smtp: &SmtpServer) -> Vec<String> {
    let mut to: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| m["to"][0].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    to
}

async fn start_email(app: &TestApp, smtp: &SmtpServer) -> HeraldProcess {
    app.start("herald-email", &[("SMTP_URL", &smtp.url())])
        .await
}

#[tokio::test]
async fn sends_killed_before_data_are_sent_again_exactly_once() {
    let smtp = SmtpServer::start(SmtpBehaviour::StallFirstRcpt(Duration::from_secs(60)));
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut email = start_email(&app, &smtp).await;
    let created = notify_all(&app, &["alice", "bob", "carol"]).await;
    // Every send claimed and hanging before the body.
    wait_deliveries(&app, &created, "claimed", |(state, data)| {
        state == "Sending" && !data
    })
    .await;
    email.kill();

    let _email = start_email(&app, &smtp).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SWEEP).await;
    wait_deliveries(&app, &created, "sent", |(state, _)| state == "Sent").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        recipients(&smtp),
        ["alice@example.com", "bob@example.com", "carol@example.com"],
        "each email delivered exactly once"
    );
}

#[tokio::test]
async fn a_send_killed_after_data_is_not_sent_again_and_fails_saying_why() {
    // The server holds its verdict after the body: the worker dies waiting for it.
    let smtp = SmtpServer::start(SmtpBehaviour::AcceptAfter(Duration::from_secs(5)));
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let mut email = start_email(&app, &smtp).await;
    let created = notify_all(&app, &["dave"]).await;
    wait_deliveries(&app, &created, "past DATA", |(state, data)| {
        state == "Sending" && *data
    })
    .await;
    email.kill();
    // Ten minutes pass for the sweep, which gives such a send that long to be recorded.
    sqlx::query(
        "UPDATE deliveries SET data_started_at = data_started_at - interval '11 minutes', \
         updated_at = updated_at - interval '11 minutes' WHERE notification_id = $1::uuid",
    )
    .bind(id(&created[0]))
    .execute(&app.pool)
    .await
    .unwrap();

    let _email = start_email(&app, &smtp).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SWEEP).await;
    let failed = app
        .wait_for_notification(
            &app.tenant,
            &id(&created[0]),
            Duration::from_secs(30),
            |n| n["status"] == "Failed",
        )
        .await;
    let message = failed["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("may have been delivered") && message.contains("not sent again"),
        "{failed}"
    );
    // The sink drops a message whose client hung up before its verdict; a second send would
    // have been answered (after the sink's 5 s) and recorded.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(recipients(&smtp).is_empty(), "no second send");
    assert_eq!(
        deliveries(&app, &created).await,
        [("Failed".to_owned(), true)]
    );
}

#[tokio::test]
async fn a_slow_live_send_whose_claim_was_taken_back_stops_before_the_body() {
    // RCPT hangs 10 s on the first attempt: past the 2 s lease, inside the 20 s SMTP timeout,
    // so the first attempt reaches DATA after the sweep gave its claim to a second attempt.
    let smtp = SmtpServer::start(SmtpBehaviour::StallFirstRcpt(Duration::from_secs(10)));
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let email = start_email(&app, &smtp).await;
    let _scheduler = app.start("herald-scheduler", &FAST_SWEEP).await;
    let created = notify_all(&app, &["erin"]).await;
    wait_deliveries(&app, &created, "sent", |(state, _)| state == "Sent").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !email
        .logs()
        .contains("claim taken back before the body was sent")
    {
        assert!(
            Instant::now() < deadline,
            "the first attempt never reached DATA:\n{}",
            email.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(recipients(&smtp), ["erin@example.com"], "sent once");
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM deliveries WHERE notification_id = $1::uuid")
            .bind(id(&created[0]))
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 2, "the sweep's attempt sent it");
}
