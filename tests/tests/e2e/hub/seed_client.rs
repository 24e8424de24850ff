//! The hub through the official `@microsoft/signalr` client running the seed's code unchanged
//! (tests/node/seed-001.ts), against the real `herald-api`, which serves REST and the hub on
//! one base URL as the seed assumes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_shared::events::{EventType, MessagingEvent};
use herald_tests::TestApp;
use herald_tests::signalr::{ClientOptions, SignalRClient};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// Long enough for a stray event to have arrived if it was going to.
const QUIET: Duration = Duration::from_millis(750);

fn id_of(notification: &Value) -> Uuid {
    notification["id"].as_str().unwrap().parse().unwrap()
}

fn created_at(notification: &Value) -> DateTime<Utc> {
    notification["createdAt"].as_str().unwrap().parse().unwrap()
}

fn message_event(notification: &Value) -> MessagingEvent {
    MessagingEvent::notification(
        EventType::Message,
        id_of(notification),
        created_at(notification),
    )
}

/// The notification ids of `Message` events, in arrival order.
fn message_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["type"] == "Message")
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn user_call(app: &TestApp, token: &str, method: Method, path: &str) -> u16 {
    app.as_user(&app.tenant, token, method, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_connection_of_a_user_gets_the_users_events_and_other_users_get_none() {
    let app = TestApp::spawn().await;
    let notification = app.notify(&app.tenant, "alice", json!({})).await;
    let id = notification["id"].as_str().unwrap();
    let mut phone = app.connect_user("alice").await;
    let mut laptop = app.connect_user("alice").await;
    let mut bob = app.connect_user("bob").await;

    let token = app.token_for(&app.tenant, "alice").await;
    let path = format!("Notifications/{id}/read");
    assert_eq!(user_call(&app, &token, Method::PUT, &path).await, 200);

    for client in [&mut phone, &mut laptop] {
        let event = client.expect_event().await;
        assert_eq!(event["type"], "NotificationRead");
        assert_eq!(event["id"], id);
        assert_eq!(event["parentId"], Value::Null);
    }
    assert_eq!(bob.next_event(QUIET).await, None, "bob got alice's event");
}

#[tokio::test]
async fn start_rejects_a_token_of_another_tenant_with_403_and_a_bad_token_with_401() {
    let app = TestApp::spawn().await;
    let globex = app.create_tenant("globex").await;
    let foreign = app.token_for(&globex, "alice").await;
    let refused =
        SignalRClient::try_connect(ClientOptions::new(app.base_url(), app.tenant.id, foreign))
            .await
            .err()
            .expect("a token of another tenant is refused");
    assert_eq!(refused["statusCode"], 403, "{refused}");

    let refused = SignalRClient::try_connect(ClientOptions::new(
        app.base_url(),
        app.tenant.id,
        "not-a-token",
    ))
    .await
    .err()
    .expect("a malformed token is refused");
    assert_eq!(refused["statusCode"], 401, "{refused}");
}

#[tokio::test]
async fn reading_unreading_and_deleting_through_rest_reach_the_users_connections() {
    let app = TestApp::spawn().await;
    let notification = app.notify(&app.tenant, "alice", json!({})).await;
    let id = notification["id"].as_str().unwrap();
    let token = app.token_for(&app.tenant, "alice").await;
    let mut client = app.connect_user("alice").await;

    let steps = [
        (
            Method::PUT,
            format!("Notifications/{id}/read"),
            200,
            "NotificationRead",
        ),
        (
            Method::PUT,
            format!("Notifications/{id}/unread"),
            200,
            "NotificationUnread",
        ),
        (
            Method::DELETE,
            format!("Notifications/{id}"),
            204,
            "NotificationDeleted",
        ),
    ];
    for (method, path, status, kind) in steps {
        assert_eq!(
            user_call(&app, &token, method, &path).await,
            status,
            "{path}"
        );
        let event = client.expect_event().await;
        assert_eq!(
            (event["type"].as_str(), event["id"].as_str()),
            (Some(kind), Some(id))
        );
        assert_eq!(event["parentId"], Value::Null);
        let at: DateTime<Utc> = event["createdAt"].as_str().unwrap().parse().unwrap();
        assert!((Utc::now() - at).num_seconds().abs() < 60);
    }
}

#[tokio::test]
async fn a_message_event_makes_the_seed_fetch_and_display_the_notification() {
    let app = TestApp::spawn().await;
    let notification = app
        .notify(
            &app.tenant,
            "alice",
            json!({ "subject": "Maintenance on Saturday" }),
        )
        .await;
    app.mark_sent(&[id_of(&notification)]).await;
    let mut client = app.connect_user("alice").await;

    // What the delivery worker publishes once the notification is in the inbox.
    app.publish(&app.tenant, "alice", vec![message_event(&notification)])
        .await;

    let event = client.expect_event().await;
    assert_eq!(event["type"], "Message");
    assert_eq!(event["id"], notification["id"]);
    assert_eq!(created_at(&event), created_at(&notification));
    let displayed = client.expect_notification().await;
    assert_eq!(displayed["id"], notification["id"]);
    assert_eq!(displayed["subject"], "Maintenance on Saturday");
    assert_eq!(displayed["status"], "Sent");
}

#[tokio::test]
async fn last_event_at_replays_what_was_delivered_since_then_oldest_first() {
    let app = TestApp::spawn().await;
    let pause = || tokio::time::sleep(Duration::from_millis(5));
    let seen = app
        .notify(&app.tenant, "alice", json!({ "subject": "seen" }))
        .await;
    let late = app
        .notify(&app.tenant, "alice", json!({ "subject": "late" }))
        .await;
    // Had before lastEventAt, but within the replay's overlap: it comes again (to drop by id).
    let recent = app
        .notify(&app.tenant, "alice", json!({ "subject": "recent" }))
        .await;
    app.mark_sent(&[id_of(&seen), id_of(&recent)]).await;
    // Long before lastEventAt: past the overlap, so not replayed.
    app.backdate(id_of(&seen), chrono::Duration::minutes(1))
        .await;
    pause().await;
    let last_event_at = Utc::now();
    pause().await;
    // Delivered after lastEventAt although created before it (a scheduled one, say).
    app.mark_sent(&[id_of(&late)]).await;
    let mut missed = Vec::new();
    for subject in ["one", "two", "three"] {
        missed.push(
            app.notify(&app.tenant, "alice", json!({ "subject": subject }))
                .await,
        );
    }
    app.mark_sent(&missed.iter().map(id_of).collect::<Vec<_>>())
        .await;
    let in_an_hour = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    app.notify(&app.tenant, "alice", json!({ "scheduledFor": in_an_hour }))
        .await;
    let bobs = app.notify(&app.tenant, "bob", json!({})).await;
    app.mark_sent(&[id_of(&bobs)]).await;

    let options = app
        .client_options(&app.tenant, "alice")
        .await
        .last_event_at(last_event_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let mut client = SignalRClient::connect(options).await;

    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(client.expect_event().await);
    }
    let expected: Vec<String> = [&late, &recent]
        .into_iter()
        .chain(&missed)
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(message_ids(&events), expected, "oldest first, nothing else");
    assert_eq!(created_at(&events[0]), created_at(&late));
    assert_eq!(
        client.next_event(QUIET).await,
        None,
        "no duplicates, no extras"
    );

    let mut subjects = Vec::new();
    for _ in 0..5 {
        subjects.push(client.expect_notification().await["subject"].take());
    }
    subjects.sort_by_key(|subject| subject.to_string());
    assert_eq!(
        subjects,
        vec![
            json!("late"),
            json!("one"),
            json!("recent"),
            json!("three"),
            json!("two")
        ]
    );
}

#[tokio::test]
async fn live_events_published_during_the_catch_up_follow_it_without_duplicates() {
    let app = TestApp::spawn().await;
    let since = Utc::now() - chrono::Duration::seconds(1);
    let first = app.notify(&app.tenant, "alice", json!({})).await;
    let second = app.notify(&app.tenant, "alice", json!({})).await;
    app.mark_sent(&[id_of(&first), id_of(&second)]).await;

    // Hold the catch-up query: the client's start() resolves (the subscription is live) while
    // the replay waits on the table lock, so events published now race the replay.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let options = app
        .client_options(&app.tenant, "alice")
        .await
        .last_event_at(since.to_rfc3339());
    let mut client = SignalRClient::connect(options).await;
    let fresh = MessagingEvent::notification(EventType::Message, Uuid::now_v7(), Utc::now());
    app.publish(
        &app.tenant,
        "alice",
        vec![
            message_event(&second),
            MessagingEvent::notification(EventType::NotificationRead, id_of(&first), Utc::now()),
            fresh.clone(),
        ],
    )
    .await;
    assert_eq!(
        client.next_event(QUIET).await,
        None,
        "live events wait for the replay"
    );
    lock.rollback().await.unwrap();

    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(client.expect_event().await);
    }
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let fresh_id = fresh.id.as_str();
    assert_eq!(
        kinds,
        vec![
            ("Message", first_id),
            ("Message", second_id),
            ("NotificationRead", first_id),
            ("Message", fresh_id),
        ]
    );
    assert_eq!(
        client.next_event(QUIET).await,
        None,
        "the live copy of a replayed event is dropped"
    );
}
