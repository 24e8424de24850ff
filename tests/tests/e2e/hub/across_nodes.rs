//! Negotiate on one hub node, connect on another: connection tokens are signed and their single
//! use is kept in Redis, so no sticky sessions are needed.

use std::time::Duration;

use herald_shared::events::{EventType, MessagingEvent};
use herald_tests::TestApp;
use herald_tests::hub::hub_ws_url;
use herald_tests::raw_hub::{RawHubClient, Refused};
use herald_tests::signalr::{ClientOptions, SignalRClient};
use herald_tests::split_proxy::{Routes, SplitProxy};
use herald_tests::test_app::json_body;
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

fn read_event() -> MessagingEvent {
    MessagingEvent::notification(
        EventType::NotificationRead,
        Uuid::now_v7(),
        chrono::Utc::now(),
    )
}

async fn upgrade_status(url: &str) -> u16 {
    match RawHubClient::connect(url, None).await {
        Ok(_) => 101,
        Err(Refused::Status(status)) => status,
        Err(Refused::Other(error)) => panic!("the upgrade failed without a status: {error}"),
    }
}

#[tokio::test]
async fn the_official_client_negotiates_on_one_node_and_connects_on_another() {
    let app = TestApp::spawn().await;
    let (node_a, node_b) = (app.spawn_hub_node().await, app.spawn_hub_node().await);
    let proxy = SplitProxy::start(Routes {
        negotiate: node_a.port,
        upgrade: node_b.port,
        other: app.api.port,
    })
    .await;
    let token = app.token_for(&app.tenant, "alice").await;
    // Seed 001's code, with negotiation (the SignalR default).
    let mut client =
        SignalRClient::connect(ClientOptions::new(proxy.base_url(), app.tenant.id, token)).await;
    assert!(proxy.negotiates() >= 1, "negotiate went through the proxy");
    assert!(proxy.upgrades() >= 1, "the upgrade went through the proxy");

    let event = read_event();
    app.publish(&app.tenant, "alice", vec![event.clone()]).await;
    let received = client.expect_event().await;
    assert_eq!(received["id"], json!(event.id), "{}", node_b.logs());
}

#[tokio::test]
async fn a_connection_token_is_redeemed_once_across_nodes() {
    let app = TestApp::spawn().await;
    let (node_a, node_b) = (app.spawn_hub_node().await, app.spawn_hub_node().await);
    let token = app.token_for(&app.tenant, "alice").await;
    let body = json_body(
        app.negotiate(&node_a.base_url(), Some(&token), "negotiateVersion=1")
            .await,
    )
    .await;
    let id = body["connectionToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let on = |node: &herald_tests::process::HeraldProcess| {
        hub_ws_url(&node.base_url(), app.tenant.id, &format!("id={id}"))
    };

    let mut client = RawHubClient::connect(&on(&node_b), None)
        .await
        .unwrap_or_else(|_| panic!("node B refused node A's token:\n{}", node_b.logs()));
    assert_eq!(client.handshake().await, json!({}));
    let event = read_event();
    app.publish(&app.tenant, "alice", vec![event.clone()]).await;
    let record = client.next_message(WAIT).await.expect("an event");
    assert_eq!(record["arguments"][0]["id"], json!(event.id));

    assert_eq!(upgrade_status(&on(&node_a)).await, 404, "reused on A");
    assert_eq!(upgrade_status(&on(&node_b)).await, 404, "reused on B");

    // Tampered with (another user's name in the payload): refused, whatever the node.
    let other_body = json_body(
        app.negotiate(&node_a.base_url(), Some(&token), "negotiateVersion=1")
            .await,
    )
    .await;
    let fresh = other_body["connectionToken"].as_str().unwrap();
    let parts: Vec<&str> = fresh.split('.').collect();
    assert_eq!(parts.len(), 3, "{fresh}");
    let forged_payload = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = json!("mallory");
        engine.encode(claims.to_string())
    };
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    let url = hub_ws_url(&node_b.base_url(), app.tenant.id, &format!("id={forged}"));
    assert_eq!(upgrade_status(&url).await, 404, "forged");
}
