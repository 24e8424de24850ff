//! Hub connections end with their credential: a connection whose token expires, or whose
//! token's API key is revoked, is sent a Close with `allowReconnect: true`; the official client
//! then reconnects with the fresh token its factory returns, and a revoked key's token is
//! refused at negotiate and upgrade.

use std::time::Duration;

use herald_shared::events::{EventType, MessagingEvent};
use herald_tests::TestApp;
use herald_tests::hub::hub_ws_url;
use herald_tests::raw_hub::{RawHubClient, Refused};
use herald_tests::signalr::{ClientOptions, SignalRClient};
use herald_tests::tokens::{hs256, now};
use serde_json::{Value, json};
use uuid::Uuid;

/// Generous: the sweep runs every second in these tests, but the machine may be loaded.
const WAIT: Duration = Duration::from_secs(60);

/// Sweeps and revocation reads every second, and no client timeout to confuse with an expiry.
const FAST_SWEEP: &[(&str, &str)] = &[
    ("HERALD_HUB_CREDENTIAL_SWEEP_SECS", "1"),
    ("HERALD_JWT_REVOCATION_REFRESH_SECS", "1"),
    ("HERALD_HUB_CLIENT_TIMEOUT_SECS", "600"),
];

fn read_event() -> MessagingEvent {
    MessagingEvent::notification(
        EventType::NotificationRead,
        Uuid::now_v7(),
        chrono::Utc::now(),
    )
}

/// An HS256 token for `user_id` that expires `secs` from now.
fn short_token(app: &TestApp, user_id: &str, secs: u64) -> String {
    hs256(&json!({
        "sub": user_id, "tid": app.tenant.id, "iat": now(), "exp": now() + secs, "iss": "herald",
    }))
}

/// A raw client negotiated and handshaken with `token`.
async fn connect_raw(app: &TestApp, token: &str) -> RawHubClient {
    let negotiated: Value = app
        .negotiate(&app.base_url(), Some(token), "negotiateVersion=1")
        .await
        .json()
        .await
        .expect("negotiate json");
    let id = negotiated["connectionToken"].as_str().expect("a token");
    let url = hub_ws_url(&app.base_url(), app.tenant.id, &format!("id={id}"));
    let mut client = match RawHubClient::connect(&url, Some(token)).await {
        Ok(client) => client,
        Err(refused) => panic!("upgrade refused: {refused:?}"),
    };
    assert_eq!(client.handshake().await, json!({}));
    client
}

async fn assert_receives_an_event(app: &TestApp, client: &mut RawHubClient) {
    app.publish(&app.tenant, "alice", vec![read_event()]).await;
    let record = client.next_message(WAIT).await.expect("an event");
    assert_eq!(record["target"], "MessagingEvent", "{record}");
}

/// Waits for the server to close; returns the Close record, after checking no event came
/// with it.
async fn close_record(client: &mut RawHubClient) -> Value {
    let ending = client.ending(WAIT).await.expect("the server closes");
    let (closes, others): (Vec<Value>, Vec<Value>) = ending
        .records
        .into_iter()
        .partition(|record| record["type"] == 7);
    assert!(others.is_empty(), "records before the close: {others:?}");
    closes.into_iter().next().expect("a Close record")
}

#[tokio::test]
async fn a_connection_is_closed_with_allow_reconnect_when_its_token_expires() {
    let app = TestApp::spawn_with(FAST_SWEEP).await;
    let token = short_token(&app, "alice", 8);
    let mut client = connect_raw(&app, &token).await;
    assert_receives_an_event(&app, &mut client).await;

    let close = close_record(&mut client).await;
    assert_eq!(close["allowReconnect"], true, "{close}");
    let error = close["error"].as_str().unwrap_or_default();
    assert!(error.contains("expired"), "{close}");
    // Closed for good: nothing published afterwards reaches this socket.
    app.publish(&app.tenant, "alice", vec![read_event()]).await;
    assert!(client.next_message(Duration::from_secs(1)).await.is_none());
}

#[tokio::test]
async fn the_official_client_reconnects_with_a_fresh_token_after_expiry() {
    let app = TestApp::spawn_with(FAST_SWEEP).await;
    let fresh = app.token_for(&app.tenant, "alice").await;
    let options = ClientOptions::new(app.base_url(), app.tenant.id, short_token(&app, "alice", 8))
        .next_token(fresh);
    let mut client = SignalRClient::connect(options).await;

    let reconnecting = client
        .expect_matching("reconnecting", "a reconnect after expiry", |_| true)
        .await;
    let error = reconnecting["error"].as_str().unwrap_or_default();
    assert!(error.contains("expired"), "{reconnecting}");
    client.expect("reconnected").await;
    let event = read_event();
    app.publish(&app.tenant, "alice", vec![event]).await;
    let received = client
        .expect_event_where("the event after reconnecting", |e| {
            e["type"] == "NotificationRead"
        })
        .await;
    assert_eq!(received["type"], "NotificationRead");
}

#[tokio::test]
async fn revoking_the_api_key_closes_its_tokens_connections_and_refuses_them_again() {
    let app = TestApp::spawn_with(FAST_SWEEP).await;
    let token = app.token_for(&app.tenant, "alice").await;
    let mut client = connect_raw(&app, &token).await;
    assert_receives_an_event(&app, &mut client).await;

    app.revoke_api_keys(&app.tenant);
    let close = close_record(&mut client).await;
    assert_eq!(close["allowReconnect"], true, "{close}");
    let error = close["error"].as_str().unwrap_or_default();
    assert!(error.contains("revoked"), "{close}");

    // Reconnecting with the same token fails at negotiate and at a direct upgrade.
    let negotiate = app
        .negotiate(&app.base_url(), Some(&token), "negotiateVersion=1")
        .await;
    assert_eq!(negotiate.status(), 401);
    let body: Value = negotiate.json().await.expect("problem body");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked"),
        "{body}"
    );
    let url = hub_ws_url(&app.base_url(), app.tenant.id, "");
    match RawHubClient::connect(&url, Some(&token)).await {
        Err(Refused::Status(status)) => assert_eq!(status, 401),
        Ok(_) => panic!("the upgrade was accepted"),
        Err(Refused::Other(error)) => panic!("the upgrade failed without a status: {error}"),
    }
}
