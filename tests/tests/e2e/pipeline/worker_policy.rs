//! Every queue's worker retries a failed job with backoff, and each attempt runs in a span
//! naming the tenant, so an operator reading the worker's log sees whose job failed.

use std::time::Duration;

use herald_tests::TestApp;
use serde_json::json;

/// Makes the first two attempts to change any notification fail, whatever the transaction: a
/// sequence is not rolled back with the failing statement.
async fn refuse_first_two_updates(app: &TestApp) {
    for statement in [
        "CREATE SEQUENCE refused_updates",
        "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF nextval('refused_updates') <= 2 THEN \
             RAISE EXCEPTION 'notification update refused by the test'; \
           END IF; \
           RETURN NEW; \
         END $$",
        "CREATE TRIGGER refuse_update BEFORE UPDATE ON notifications \
           FOR EACH ROW EXECUTE FUNCTION refuse_update()",
    ] {
        sqlx::query(statement).execute(&app.pool).await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_delivery_is_retried_by_the_worker_and_logged_with_its_tenant() {
    let app = TestApp::spawn().await;
    refuse_first_two_updates(&app).await;
    // No scheduler runs: only the worker's own retries can deliver this notification.
    let fanout = app.start("herald-fanout", &[]).await;
    let created = app.notify(&app.tenant, "alice", json!({})).await;
    let id = created["id"].as_str().unwrap();

    let sent = app
        .wait_for_notification(&app.tenant, id, Duration::from_secs(20), |n| {
            n["status"] == "Sent"
        })
        .await;
    assert!(sent["sentAt"].is_string());

    let logs = fanout.logs();
    let failures: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("job attempt failed") && line.contains("refused by the test"))
        .collect();
    assert_eq!(failures.len(), 2, "two failed attempts logged:\n{logs}");
    let tenant = app.tenant.id.to_string();
    for line in failures {
        assert!(
            line.contains(&tenant) && line.contains("queue") && line.contains("\"deliver\""),
            "the failure names its tenant and queue: {line}"
        );
    }
}
