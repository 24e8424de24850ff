//! The per-user cap on hub connections (`HERALD_HUB_MAX_CONNECTIONS_PER_USER`): the next
//! connection is refused clearly — 429 at negotiate, a Close with an error at connect — and
//! everyone else is unaffected.

use std::time::Duration;

use herald_tests::TestApp;
use herald_tests::hub::hub_ws_url;
use herald_tests::raw_hub::RawHubClient;
use herald_tests::test_app::json_body;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_user_at_the_connection_limit_is_refused_at_negotiate_and_at_connect() {
    let app = TestApp::spawn_with(&[("HERALD_HUB_MAX_CONNECTIONS_PER_USER", "2")]).await;
    let base = app.base_url();
    let alice = app.token_for(&app.tenant, "alice").await;
    let first = app.raw_client(&base, "alice").await;
    let _second = app.raw_client(&base, "alice").await;

    let refused = app
        .negotiate(&base, Some(&alice), "negotiateVersion=1")
        .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem = json_body(refused).await;
    assert_eq!(problem["status"], 429);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("HERALD_HUB_MAX_CONNECTIONS_PER_USER"),
        "{problem}"
    );

    // skipNegotiation: the upgrade itself is the only request, so the answer is a Close.
    let url = hub_ws_url(&base, app.tenant.id, &format!("access_token={alice}"));
    let mut skipped = RawHubClient::connect(&url, None).await.expect("upgrade");
    assert_eq!(skipped.handshake().await, json!({}));
    let ending = skipped.ending(WAIT).await.expect("closed by the hub");
    let [close] = ending.records.as_slice() else {
        panic!("expected one Close: {:?}", ending.records);
    };
    assert_eq!(close["type"], 7);
    assert!(close.get("allowReconnect").is_none(), "{close}");
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("Too many connections"),
        "{close}"
    );

    // Another user is not affected, and alice may connect again once one of hers closes.
    let _bob = app.raw_client(&base, "bob").await;
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = app
            .negotiate(&base, Some(&alice), "negotiateVersion=1")
            .await
            .status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed connection was never released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _again = app.raw_client(&base, "alice").await;
}
