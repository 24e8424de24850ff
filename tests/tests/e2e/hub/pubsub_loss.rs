//! A hub node's Redis pub/sub connection drops: once it is subscribed again, every connection
//! that was live across the gap is closed with `allowReconnect`, and the official client
//! reconnects with `lastEventAt` and receives what was sent meanwhile.

use std::time::Duration;

use herald_shared::events::{EventType, MessagingEvent};
use herald_tests::TestApp;
use herald_tests::redis_server::RedisServer;
use herald_tests::signalr::{ClientOptions, SignalRClient};
use serde_json::json;
use uuid::Uuid;

/// `withAutomaticReconnect()` retries after 0, 2 and 10 s; the node retries Redis within 5 s.
const PATIENCE: Duration = Duration::from_secs(30);

async fn redis_command(url: &str, args: &[&str]) -> redis::Value {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query_async(&mut conn).await.expect("redis command")
}

#[tokio::test]
async fn a_client_gets_what_was_sent_while_its_nodes_subscription_was_down() {
    let redis = RedisServer::start().await;
    // The hub node has a Redis user of its own, so the test can keep it (and only it) out
    // while the API goes on publishing: the gap is certain, not a race with the reconnect.
    redis_command(
        &redis.url(),
        &[
            "ACL",
            "SETUSER",
            "hub",
            "on",
            ">hub-password",
            "~*",
            "&*",
            "+@all",
        ],
    )
    .await;
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url())]).await;
    let hub_redis = format!("redis://hub:hub-password@127.0.0.1:{}", redis.port);
    let node = app.start_hub_node(0, &[("REDIS_URL", &hub_redis)]).await;
    let token = app.token_for(&app.tenant, "alice").await;
    let options = ClientOptions::new(node.base_url(), app.tenant.id, token).catch_up();
    let mut client = SignalRClient::connect(options).await;
    let first = MessagingEvent::notification(
        EventType::NotificationRead,
        Uuid::now_v7(),
        chrono::Utc::now(),
    );
    app.publish(&app.tenant, "alice", vec![first]).await;
    assert_eq!(client.expect_event().await["type"], "NotificationRead");

    redis_command(&redis.url(), &["ACL", "SETUSER", "hub", "off"]).await;
    redis_command(&redis.url(), &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    let missed = app.notify(&app.tenant, "alice", json!({})).await;
    redis_command(&redis.url(), &["ACL", "SETUSER", "hub", "on"]).await;

    let reconnecting = client.next_of("reconnecting", PATIENCE).await;
    assert!(
        reconnecting.is_some(),
        "the client was never told to reconnect:\n{}",
        node.logs()
    );
    let event = client
        .next_event_where(|event| event["type"] == "Message", PATIENCE)
        .await
        .unwrap_or_else(|| panic!("the missed event never arrived:\n{}", client.logs()));
    assert_eq!(event["id"], missed["id"]);
}
