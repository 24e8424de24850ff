//! Email through the tenant's SMTP providers: failover by priority, a delivery log naming the
//! relay that sent, and email targets beside the notification's own address — against real
//! `herald-fanout`, `herald-email` and aiosmtpd servers.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::process::closed_port;
use herald_tests::smtp::{SmtpBehaviour, SmtpServer};
use reqwest::Method;
use serde_json::{Value, json};

async fn provider(app: &TestApp, name: &str, priority: i32, url: &str) {
    let body = json!({ "type": "smtp", "name": name, "priority": priority,
                       "config": { "url": url, "from": format!("{name} <{name}@acme.example>") } });
    let (status, created) = app
        .backend_call(&app.tenant, Method::POST, "Providers", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
}

/// The notification's deliveries once every one of them has ended.
async fn settled_deliveries(app: &TestApp, id: &str, count: usize) -> Vec<Value> {
    let path = format!("Notifications/{id}/deliveries");
    for _ in 0..100 {
        let (status, log) = app
            .backend_call(&app.tenant, Method::GET, &path, None)
            .await;
        assert_eq!(status, 200, "{log}");
        let log = log.as_array().unwrap().clone();
        let ended = log
            .iter()
            .all(|d| ["Sent", "Failed", "Skipped"].contains(&d["status"].as_str().unwrap()));
        if log.len() == count && ended {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the deliveries of {id} did not settle");
}

#[tokio::test]
async fn a_relay_refusing_connections_fails_over_to_the_next_and_the_log_names_it() {
    let smtp = SmtpServer::start(SmtpBehaviour::Accept);
    let app = TestApp::spawn().await;
    // The installation's relay would accept too: the tenant's providers must be used instead.
    let installation = SmtpServer::start(SmtpBehaviour::Accept);
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app
        .start("herald-email", &[("SMTP_URL", &installation.url())])
        .await;
    provider(
        &app,
        "down",
        1,
        &format!("smtp://127.0.0.1:{}", closed_port()),
    )
    .await;
    provider(&app, "backup", 2, &smtp.url()).await;

    let created = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "subject": "Invoice", "email": "alice@example.com" }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0]["to"], json!(["alice@example.com"]));
    assert_eq!(received[0]["from"], "backup@acme.example");

    let log = settled_deliveries(&app, id, 1).await;
    assert_eq!(log[0]["channel"], "email");
    assert!(
        log[0]["targetId"].is_null(),
        "the notification's own address: {log:?}"
    );
    assert_eq!(
        (log[0]["status"].as_str(), log[0]["provider"].as_str()),
        (Some("Sent"), Some("backup"))
    );
    assert_eq!(log[0]["attempts"], 1, "failover happens within the attempt");
    assert!(log[0]["sentAt"].is_string());
    assert!(installation.received().is_empty());

    // A user reads their own notification's log, not another user's.
    let token = app.token_for(&app.tenant, "bob").await;
    let response = app
        .as_user(
            &app.tenant,
            &token,
            Method::GET,
            &format!("Notifications/{id}/deliveries"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn the_email_channel_reaches_the_profile_address_and_every_email_target_once() {
    let smtp = SmtpServer::start(SmtpBehaviour::Accept);
    let app = TestApp::spawn().await;
    let _fanout = app.start("herald-fanout", &[]).await;
    let _email = app
        .start("herald-email", &[("SMTP_URL", &smtp.url())])
        .await;
    app.put_recipient(
        &app.tenant,
        "alice",
        json!({ "email": "alice@home.example" }),
    )
    .await;
    let (status, target) = app
        .backend_call(
            &app.tenant,
            Method::POST,
            "Users/alice/targets",
            Some(json!({ "type": "email", "address": "alice@work.example" })),
        )
        .await;
    assert_eq!(status, 201, "{target}");

    let created = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "subject": "Both inboxes", "channels": ["inApp", "email"] }),
        )
        .await;
    assert_eq!(created["channels"], json!(["inApp", "email"]));
    let id = created["id"].as_str().unwrap();
    let log = settled_deliveries(&app, id, 2).await;
    assert!(
        log.iter()
            .all(|d| d["status"] == "Sent" && d["provider"] == "installation"),
        "{log:?}"
    );
    let targets: Vec<&Value> = log.iter().map(|d| &d["targetId"]).collect();
    assert!(
        targets.contains(&&Value::Null) && targets.contains(&&target["id"]),
        "{log:?}"
    );
    let mut to: Vec<String> = smtp
        .wait_for(2, Duration::from_secs(10))
        .await
        .iter()
        .map(|mail| mail["to"][0].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["alice@home.example", "alice@work.example"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 2, "each address once");

    // Opting out of email silences every email delivery, the targets' too.
    app.put_recipient(
        &app.tenant,
        "alice",
        json!({ "email": "alice@home.example",
        "preferences": { "emailEnabled": false } }),
    )
    .await;
    let quiet = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "subject": "Quiet", "channels": ["inApp", "email"] }),
        )
        .await;
    app.wait_for_notification(
        &app.tenant,
        quiet["id"].as_str().unwrap(),
        Duration::from_secs(5),
        |n| n["status"] == "Sent",
    )
    .await;
    let (_, log) = app
        .backend_call(
            &app.tenant,
            Method::GET,
            &format!("Notifications/{}/deliveries", quiet["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(log, json!([]));
}

#[tokio::test]
async fn channels_must_name_the_inbox_and_known_channels() {
    let app = TestApp::spawn().await;
    // Web push, SMS and webhook targets are stored but not sent yet: refused, not left pending.
    for channels in [
        json!(["email"]),
        json!([]),
        json!(["inApp", "pigeon"]),
        json!(["inApp", "sms"]),
    ] {
        let response = app
            .as_backend(&app.tenant, Method::POST, "Notifications")
            .json(
                &json!({ "userId": "alice", "subject": "s", "message": "m", "channels": channels }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{channels}");
        let problem: Value = response.json().await.unwrap();
        let fields: Vec<&String> = problem["errors"].as_object().unwrap().keys().collect();
        assert!(
            fields.iter().all(|f| f.starts_with("channels")) && !fields.is_empty(),
            "{problem}"
        );
    }
}
