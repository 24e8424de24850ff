//! `herald-hub` as its own process: several nodes, restarts with SIGTERM, and Redis going away
//! under a node.

use std::time::Duration;

use herald_shared::events::{EventType, MessagingEvent, user_channel};
use herald_tests::TestApp;
use herald_tests::redis_server::RedisServer;
use herald_tests::signalr::{ClientOptions, SignalRClient};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const QUIET: Duration = Duration::from_millis(750);
/// `withAutomaticReconnect()` retries after 0, 2 and 10 s.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(30);

async fn read(app: &TestApp, user_id: &str, notification: &Value) {
    let token = app.token_for(&app.tenant, user_id).await;
    let path = format!(
        "Notifications/{}/read",
        notification["id"].as_str().unwrap()
    );
    let response = app
        .as_user(&app.tenant, &token, Method::PUT, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

fn id_of(notification: &Value) -> Uuid {
    notification["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn clients_on_two_hub_nodes_each_get_their_users_events() {
    let app = TestApp::spawn().await;
    let (first_node, second_node) = (app.spawn_hub_node().await, app.spawn_hub_node().await);
    let alice = app.token_for(&app.tenant, "alice").await;
    let bob = app.token_for(&app.tenant, "bob").await;
    let connect = |node: &herald_tests::process::HeraldProcess, token: &str| {
        SignalRClient::connect(ClientOptions::new(node.base_url(), app.tenant.id, token))
    };
    let mut alice_on_first = connect(&first_node, &alice).await;
    let mut alice_on_second = connect(&second_node, &alice).await;
    let mut bob_on_second = connect(&second_node, &bob).await;

    let alices = app.notify(&app.tenant, "alice", json!({})).await;
    read(&app, "alice", &alices).await;
    for client in [&mut alice_on_first, &mut alice_on_second] {
        let event = client.expect_event().await;
        assert_eq!(
            (&event["type"], &event["id"]),
            (&json!("NotificationRead"), &alices["id"])
        );
    }
    assert_eq!(bob_on_second.next_event(QUIET).await, None);

    let bobs = app.notify(&app.tenant, "bob", json!({})).await;
    read(&app, "bob", &bobs).await;
    assert_eq!(bob_on_second.expect_event().await["id"], bobs["id"]);
    assert_eq!(alice_on_first.next_event(QUIET).await, None);
}

#[tokio::test]
async fn a_client_reconnects_after_its_node_restarts_and_misses_nothing_sent_meanwhile() {
    let app = TestApp::spawn().await;
    let mut node = app.start_hub_node(0, &[]).await;
    let port = node.port;
    let seen = app.notify(&app.tenant, "alice", json!({})).await;
    app.mark_sent(&[id_of(&seen)]).await;
    let token = app.token_for(&app.tenant, "alice").await;
    let options = ClientOptions::new(node.base_url(), app.tenant.id, token).catch_up();
    let mut client = SignalRClient::connect(options).await;
    read(&app, "alice", &seen).await;
    assert_eq!(client.expect_event().await["type"], "NotificationRead");

    node.terminate();
    let status = node
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("the node stops on SIGTERM");
    assert!(status.success(), "{status}:\n{}", node.logs());
    client.expect("reconnecting").await;

    // Delivered while no node was up.
    let mut missed = Vec::new();
    for subject in ["while down 1", "while down 2"] {
        missed.push(
            app.notify(&app.tenant, "alice", json!({ "subject": subject }))
                .await,
        );
    }
    app.mark_sent(&missed.iter().map(id_of).collect::<Vec<_>>())
        .await;

    let _node = app.start_hub_node(port, &[]).await;
    assert!(
        client
            .next_of("reconnected", RECONNECT_PATIENCE)
            .await
            .is_some(),
        "withAutomaticReconnect did not reconnect:\n{}",
        client.logs()
    );
    // `seen` was had before the restart but lies within the replay's overlap: it comes again.
    for notification in std::iter::once(&seen).chain(&missed) {
        let event = client.expect_event().await;
        assert_eq!(
            (&event["type"], &event["id"]),
            (&json!("Message"), &notification["id"])
        );
    }
    read(&app, "alice", &missed[0]).await;
    let live = client.expect_event().await;
    assert_eq!(
        (&live["type"], &live["id"]),
        (&json!("NotificationRead"), &missed[0]["id"])
    );
    assert_eq!(client.next_event(QUIET).await, None, "nothing twice");
}

#[tokio::test]
async fn sigterm_tells_every_client_to_reconnect_then_closes_and_exits_cleanly() {
    let app = TestApp::spawn().await;
    let mut node = app.spawn_hub_node().await;
    let mut first = app.raw_client(&node.base_url(), "alice").await;
    let mut second = app.raw_client(&node.base_url(), "bob").await;

    node.terminate();
    for client in [&mut first, &mut second] {
        let ending = client
            .ending(Duration::from_secs(10))
            .await
            .expect("closed by the node");
        assert_eq!(
            ending.records,
            vec![json!({ "type": 7, "allowReconnect": true })]
        );
        assert_eq!(ending.close_code, Some(1000));
    }
    let status = node
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("the node exits");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_node_subscribes_its_users_again_when_redis_comes_back() {
    let app = TestApp::spawn().await;
    let mut redis = RedisServer::start().await;
    let redis_port = redis.port;
    let node = app.start_hub_node(0, &[("REDIS_URL", &redis.url())]).await;
    let mut client = app.raw_client(&node.base_url(), "alice").await;
    let channel = user_channel(&app.redis_prefix, app.tenant.id, "alice");
    let publish = async |url: &str| -> i64 {
        let event = MessagingEvent::notification(
            EventType::NotificationRead,
            Uuid::now_v7(),
            chrono::Utc::now(),
        );
        let mut redis = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(event.to_json())
            .query_async(&mut redis)
            .await
            .unwrap()
    };
    assert_eq!(
        publish(&redis.url()).await,
        1,
        "subscribed before the restart"
    );
    assert!(client.next_message(Duration::from_secs(10)).await.is_some());

    redis.stop();
    let redis = RedisServer::start_on(redis_port).await;
    // Events published while the subscription was down are lost to this connection, so once the
    // node has subscribed again it tells the client to reconnect (and catch up).
    let ending = client
        .ending(Duration::from_secs(20))
        .await
        .expect("the node closes the connection once it has subscribed again");
    let close = ending
        .records
        .iter()
        .find(|record| record["type"] == 7)
        .expect("a SignalR Close");
    assert_eq!(close["allowReconnect"], true, "{close}");

    // The node's first use of the new Redis may still be reconnecting (503): connect again.
    let mut client = None;
    for _ in 0..50 {
        if let Ok(connected) = app.try_raw_client(&node.base_url(), "alice").await {
            client = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut client = client.expect("a new connection after Redis came back");
    let mut resubscribed = false;
    for _ in 0..100 {
        // PUBLISH answers how many subscribers got the message.
        if publish(&redis.url()).await == 1 {
            resubscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        resubscribed,
        "the node never subscribed again:\n{}",
        node.logs()
    );
    let event = client.next_message(Duration::from_secs(10)).await;
    assert_eq!(event.expect("the event")["target"], "MessagingEvent");
}

#[tokio::test]
async fn a_node_subscribes_once_per_user_and_unsubscribes_when_the_last_connection_leaves() {
    let app = TestApp::spawn().await;
    let node = app.spawn_hub_node().await;
    let channel = user_channel(&app.redis_prefix, app.tenant.id, "alice");
    let subscribers = async || -> i64 {
        let mut redis = redis::Client::open(herald_tests::redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let (_, count): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut redis)
            .await
            .unwrap();
        count
    };
    assert_eq!(subscribers().await, 0);
    let phone = app.raw_client(&node.base_url(), "alice").await;
    let laptop = app.raw_client(&node.base_url(), "alice").await;
    assert_eq!(
        subscribers().await,
        1,
        "one subscription for both connections"
    );
    drop(phone);
    tokio::time::sleep(QUIET).await;
    assert_eq!(subscribers().await, 1, "the laptop is still connected");
    drop(laptop);
    let mut unsubscribed = false;
    for _ in 0..50 {
        if subscribers().await == 0 {
            unsubscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(unsubscribed, "the node kept listening for a user who left");
}
