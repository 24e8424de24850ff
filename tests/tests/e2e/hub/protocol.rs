//! The hub's wire protocol, driven by hand where the official client cannot go: negotiate
//! versions, skipNegotiation, token transports, CORS, invocations, keep-alive and timeouts.

use std::time::Duration;

use herald_shared::events::{EventType, MessagingEvent};
use herald_tests::TestApp;
use herald_tests::hub::hub_ws_url;
use herald_tests::raw_hub::{RS, RawHubClient, Refused};
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(750);

fn read_event() -> MessagingEvent {
    MessagingEvent::notification(
        EventType::NotificationRead,
        Uuid::now_v7(),
        chrono::Utc::now(),
    )
}

async fn refused_status(url: &str, bearer: Option<&str>) -> u16 {
    match RawHubClient::connect(url, bearer).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(Refused::Status(status)) => status,
        Err(Refused::Other(error)) => panic!("the upgrade failed without a status: {error}"),
    }
}

/// Proves a connection is live: an event published for `user_id` arrives on it.
async fn assert_receives_events(app: &TestApp, client: &mut RawHubClient, user_id: &str) {
    let event = read_event();
    app.publish(&app.tenant, user_id, vec![event.clone()]).await;
    let record = client.next_message(WAIT).await.expect("an event");
    assert_eq!(
        record,
        json!({
            "type": 1,
            "target": "MessagingEvent",
            "arguments": [serde_json::from_str::<Value>(&event.to_json()).unwrap()],
        })
    );
}

#[tokio::test]
async fn negotiate_answers_the_signalr_json_and_its_token_connects_once() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let response = app
        .negotiate(
            &app.base_url(),
            Some(&token),
            "clientId=tab+1&negotiateVersion=1",
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    let connection_token = body["connectionToken"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        json!({
            "negotiateVersion": 1,
            "connectionId": body["connectionId"],
            "connectionToken": connection_token,
            "availableTransports": [
                { "transport": "WebSockets", "transferFormats": ["Text", "Binary"] }
            ],
        })
    );
    assert_ne!(body["connectionId"], body["connectionToken"]);
    // A signed token (any node can verify it); the client appends it to the URL unencoded.
    assert!(
        connection_token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    );

    let url = hub_ws_url(
        &app.base_url(),
        app.tenant.id,
        &format!("clientId=tab+1&id={connection_token}"),
    );
    let mut client = RawHubClient::connect(&url, Some(&token)).await.unwrap();
    assert_eq!(client.handshake().await, json!({}));
    assert_receives_events(&app, &mut client, "alice").await;

    assert_eq!(refused_status(&url, Some(&token)).await, 404, "reused");
    let unknown = hub_ws_url(&app.base_url(), app.tenant.id, "id=AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(refused_status(&unknown, Some(&token)).await, 404, "unknown");
}

#[tokio::test]
async fn negotiate_version_0_uses_the_connection_id_as_the_token() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let body = json_body(app.negotiate(&app.base_url(), Some(&token), "").await).await;
    assert_eq!(body["negotiateVersion"], 0);
    assert!(body.get("connectionToken").is_none(), "{body}");
    assert!(body.get("useStatefulReconnect").is_none());
    let id = body["connectionId"].as_str().unwrap();
    let url = hub_ws_url(&app.base_url(), app.tenant.id, &format!("id={id}"));
    let mut client = RawHubClient::connect(&url, None).await.unwrap();
    assert_eq!(client.handshake().await, json!({}));
    assert_receives_events(&app, &mut client, "alice").await;
}

#[tokio::test]
async fn skip_negotiation_authenticates_the_upgrade_by_header_or_access_token_query() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;

    let by_header = hub_ws_url(&app.base_url(), app.tenant.id, "clientId=a");
    let mut client = RawHubClient::connect(&by_header, Some(&token))
        .await
        .unwrap();
    assert_eq!(client.handshake().await, json!({}));
    assert_receives_events(&app, &mut client, "alice").await;

    let by_query = hub_ws_url(
        &app.base_url(),
        app.tenant.id,
        &format!("clientId=b&access_token={token}"),
    );
    let mut client = RawHubClient::connect(&by_query, None).await.unwrap();
    assert_eq!(client.handshake().await, json!({}));
    assert_receives_events(&app, &mut client, "alice").await;

    // Negotiate takes the token either way too.
    let negotiated = app
        .negotiate(
            &app.base_url(),
            None,
            &format!("access_token={token}&negotiateVersion=1"),
        )
        .await;
    assert_eq!(negotiated.status(), 200);
}

#[tokio::test]
async fn missing_bad_foreign_and_api_key_credentials_are_refused() {
    let app = TestApp::spawn().await;
    let base = app.base_url();
    let globex = app.create_tenant("globex").await;
    let foreign = app.token_for(&globex, "alice").await;

    let missing = app.negotiate(&base, None, "negotiateVersion=1").await;
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let bad = app
        .negotiate(&base, Some("garbage"), "negotiateVersion=1")
        .await;
    assert_eq!(bad.status(), 401);
    let other_tenant = app
        .negotiate(&base, Some(&foreign), "negotiateVersion=1")
        .await;
    assert_eq!(other_tenant.status(), 403);
    let api_key = app
        .client
        .post(format!("{base}/tenant/{}/v1/hub/negotiate", app.tenant.id))
        .header("X-API-Key", &app.tenant.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(api_key.status(), 401, "the hub is for end users");
    let bad_time = app
        .negotiate(
            &base,
            Some(&app.token_for(&app.tenant, "alice").await),
            "lastEventAt=soon",
        )
        .await;
    assert_eq!(bad_time.status(), 400);
    assert!(json_body(bad_time).await["errors"]["lastEventAt"].is_array());

    let url = hub_ws_url(&base, app.tenant.id, "");
    assert_eq!(refused_status(&url, None).await, 401);
    assert_eq!(refused_status(&url, Some("garbage")).await, 401);
    assert_eq!(refused_status(&url, Some(&foreign)).await, 403);
    let plain_get = app
        .client
        .get(url.replacen("ws://", "http://", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(plain_get.status(), 400, "WebSocket upgrades only");
    let wrong_method = app
        .client
        .delete(url.replacen("ws://", "http://", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn a_connection_token_cannot_be_redeemed_by_another_user() {
    let app = TestApp::spawn().await;
    let alice = app.token_for(&app.tenant, "alice").await;
    let mallory = app.token_for(&app.tenant, "mallory").await;
    let body = json_body(
        app.negotiate(&app.base_url(), Some(&alice), "negotiateVersion=1")
            .await,
    )
    .await;
    let url = hub_ws_url(
        &app.base_url(),
        app.tenant.id,
        &format!("id={}", body["connectionToken"].as_str().unwrap()),
    );
    assert_eq!(refused_status(&url, Some(&mallory)).await, 403);
}

#[tokio::test]
async fn cors_preflight_echoes_an_allowed_origin_with_credentials_and_ignores_others() {
    let app = TestApp::spawn_with(&[(
        "HERALD_HUB_CORS_ORIGINS",
        "https://app.example.com, http://localhost:3000",
    )])
    .await;
    let url = format!(
        "{}/tenant/{}/v1/hub/negotiate?negotiateVersion=1",
        app.base_url(),
        app.tenant.id
    );
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, &url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,x-requested-with,x-signalr-user-agent",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-allow-methods"], "POST");
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    for header in ["authorization", "x-requested-with", "x-signalr-user-agent"] {
        assert!(allowed_headers.contains(header), "{allowed_headers}");
    }

    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // The POST itself carries the headers too, even when it fails, so the browser app can
    // read the status.
    let token = app.token_for(&app.tenant, "alice").await;
    let post = app
        .client
        .post(&url)
        .header("Origin", "http://localhost:3000")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(
        post.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let unauthenticated = app
        .client
        .post(&url)
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.headers()["access-control-allow-credentials"],
        "true"
    );
}

#[tokio::test]
async fn an_unimplemented_invocation_gets_a_completion_error_and_the_connection_goes_on() {
    let app = TestApp::spawn().await;
    let mut client = app.raw_client(&app.base_url(), "alice").await;
    // Several records in one frame: a fire-and-forget call (no answer), a call awaiting one,
    // a message type from a later protocol version (ignored) and a ping.
    client
        .send_text(&format!(
            "{{\"type\":1,\"target\":\"Fire\",\"arguments\":[]}}{RS}\
             {{\"type\":1,\"invocationId\":\"7\",\"target\":\"SendMessage\",\"arguments\":[\"hi\"]}}{RS}\
             {{\"type\":42}}{RS}{{\"type\":6}}{RS}"
        ))
        .await;
    let completion = client.next_message(WAIT).await.expect("a completion");
    assert_eq!(completion["type"], 3);
    assert_eq!(completion["invocationId"], "7");
    assert!(
        completion["error"]
            .as_str()
            .unwrap()
            .contains("SendMessage"),
        "{completion}"
    );
    assert!(completion.get("result").is_none());
    assert_eq!(
        client.next_message(QUIET).await,
        None,
        "nothing for the others"
    );

    // A record split across two frames is reassembled.
    client
        .send_text("{\"type\":1,\"invocationId\":\"8\",\"tar")
        .await;
    client
        .send_text(&format!("get\":\"Join\",\"arguments\":[]}}{RS}"))
        .await;
    let completion = client.next_message(WAIT).await.expect("a completion");
    assert_eq!(completion["invocationId"], "8");
    assert_receives_events(&app, &mut client, "alice").await;
}

#[tokio::test]
async fn the_handshake_may_share_a_frame_and_an_unknown_protocol_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let url = hub_ws_url(&app.base_url(), app.tenant.id, "");

    let mut client = RawHubClient::connect(&url, Some(&token)).await.unwrap();
    client
        .send_text(&format!(
            "{{\"protocol\":\"json\",\"version\":1}}{RS}{{\"type\":1,\"invocationId\":\"1\",\"target\":\"X\",\"arguments\":[]}}{RS}"
        ))
        .await;
    assert_eq!(client.next_message(WAIT).await, Some(json!({})));
    assert_eq!(
        client.next_message(WAIT).await.unwrap()["invocationId"],
        "1"
    );

    let mut client = RawHubClient::connect(&url, Some(&token)).await.unwrap();
    client
        .send_text(&format!(
            "{{\"protocol\":\"messagepack\",\"version\":1}}{RS}"
        ))
        .await;
    let ending = client.ending(WAIT).await.expect("closed");
    assert_eq!(
        ending.records,
        vec![json!({ "error": "Requested protocol 'messagepack' is not available." })]
    );
}

#[tokio::test]
async fn the_server_pings_when_quiet_and_closes_a_client_it_no_longer_hears() {
    let app = TestApp::spawn_with(&[
        ("HERALD_HUB_KEEPALIVE_SECS", "1"),
        ("HERALD_HUB_CLIENT_TIMEOUT_SECS", "3"),
    ])
    .await;
    let mut silent = app.raw_client(&app.base_url(), "alice").await;
    let mut chatty = app.raw_client(&app.base_url(), "alice").await;

    let ping = silent.next_record(Duration::from_secs(3)).await;
    assert_eq!(
        ping,
        Some(json!({ "type": 6 })),
        "a ping after 1 s of quiet"
    );

    // The chatty client pings as the SignalR clients do; the silent one says nothing.
    let chatty_pings = async {
        for _ in 0..10 {
            chatty.send_text(&format!("{{\"type\":6}}{RS}")).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        chatty
    };
    let (ending, mut chatty) = tokio::join!(silent.ending(Duration::from_secs(10)), chatty_pings);
    let ending = ending.expect("the silent client is closed");
    assert_eq!(ending.close_code, Some(1000));
    let close = ending.records.last().expect("a Close message");
    assert_eq!(close["type"], 7);
    assert_eq!(close["allowReconnect"], true, "the client may reconnect");
    assert!(
        close["error"].as_str().unwrap().contains("timeout"),
        "{close}"
    );
    assert_receives_events(&app, &mut chatty, "alice").await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_while_others_keep_receiving() {
    let app = TestApp::spawn_with(&[("HERALD_HUB_MAX_QUEUED_EVENTS", "64")]).await;
    let token = app.token_for(&app.tenant, "alice").await;
    let url = hub_ws_url(&app.base_url(), app.tenant.id, "");
    let mut stalled = RawHubClient::connect_with_small_receive_buffer(&url, Some(&token))
        .await
        .unwrap();
    assert_eq!(stalled.handshake().await, json!({}));
    let mut reader = app.raw_client(&app.base_url(), "alice").await;
    let mut bob = app.raw_client(&app.base_url(), "bob").await;

    // 16 MB for alice, paced so a reading client keeps up; the stalled one reads nothing,
    // and far more than the kernel buffers and its queue can hold piles up behind it.
    let padding = "x".repeat(8 * 1024);
    let (rounds, per_round) = (40, 50);
    for round in 0..rounds {
        let payloads: Vec<String> = (0..per_round)
            .map(|i| {
                json!({ "type": "Message", "id": format!("{round}-{i}-{padding}"),
                        "parentId": null, "createdAt": "2026-01-15T10:30:00.000Z" })
                .to_string()
            })
            .collect();
        app.publish_raw(&app.tenant, "alice", &payloads).await;
        for i in 0..per_round {
            let record = reader
                .next_message(WAIT)
                .await
                .expect("the reader keeps up");
            let id = record["arguments"][0]["id"].as_str().unwrap();
            assert!(id.starts_with(&format!("{round}-{i}-")), "in order");
        }
    }
    assert_receives_events(&app, &mut bob, "bob").await;

    let ending = stalled
        .ending(Duration::from_secs(30))
        .await
        .expect("disconnected");
    let received = ending.records.len();
    assert!(
        received < rounds * per_round,
        "the stalled client was dropped, not buffered for: it got {received} events"
    );
    assert!(
        app.api
            .logs()
            .contains("disconnected a client that stopped reading"),
        "the hub says why"
    );
}

#[tokio::test]
async fn the_access_token_never_appears_in_the_logs() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let query = format!("clientId=c&access_token={token}");
    let mut client =
        RawHubClient::connect(&hub_ws_url(&app.base_url(), app.tenant.id, &query), None)
            .await
            .unwrap();
    assert_eq!(client.handshake().await, json!({}));
    let negotiated = app
        .negotiate(
            &app.base_url(),
            None,
            &format!("{query}&negotiateVersion=1"),
        )
        .await;
    assert_eq!(negotiated.status(), 200);
    let refused = app
        .negotiate(&app.base_url(), None, "access_token=secret-garbage-token")
        .await;
    assert_eq!(refused.status(), 401);
    // Paths of transports Herald does not serve, and typos, stay on the hub's side too.
    for path in ["hub/", "hub/poll", "hub/negotiate/x"] {
        let url = format!(
            "{}/tenant/{}/v1/{path}?access_token={token}",
            app.base_url(),
            app.tenant.id
        );
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }

    let logs = app.api.logs();
    assert!(logs.contains("hub request"), "hub requests are logged");
    assert!(!logs.contains(&token), "the token leaked into the log");
    assert!(!logs.contains("secret-garbage-token"));
}

#[tokio::test]
async fn a_replay_stops_at_1000_events_oldest_first() {
    let app = TestApp::spawn().await;
    let start = chrono::Utc::now() - chrono::Duration::minutes(10);
    let first_ms = start.timestamp_millis() + 1;
    let ids: Vec<Uuid> = (0..1_001)
        .map(|i| herald_shared::domain::ids::lowest_id_at(first_ms + i))
        .collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> = ids
        .iter()
        .map(|id| herald_shared::domain::ids::created_at(*id))
        .collect();
    sqlx::query(
        "INSERT INTO notifications (tenant_id, id, user_id, subject, message, type, priority, \
         status, created_at, sent_at) \
         SELECT $1, id, 'alice', 'Subject', 'Message', 'SystemAnnouncement', 1, 'Sent', at, at \
         FROM unnest($2::uuid[], $3::timestamptz[]) AS t(id, at)",
    )
    .bind(app.tenant.id)
    .bind(&ids)
    .bind(&times)
    .execute(&app.pool)
    .await
    .unwrap();

    let token = app.token_for(&app.tenant, "alice").await;
    let query = format!(
        "lastEventAt={}",
        start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let url = hub_ws_url(&app.base_url(), app.tenant.id, &query);
    let mut client = RawHubClient::connect(&url, Some(&token)).await.unwrap();
    assert_eq!(client.handshake().await, json!({}));
    let mut replayed = Vec::new();
    while let Some(record) = client.next_message(QUIET).await {
        replayed.push(
            record["arguments"][0]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    assert_eq!(replayed, ids[..1_000], "the oldest 1,000, in order");
}

#[tokio::test]
async fn a_connection_that_never_sends_its_handshake_is_closed() {
    let app = TestApp::spawn_with(&[("HERALD_HUB_HANDSHAKE_TIMEOUT_SECS", "1")]).await;
    let token = app.token_for(&app.tenant, "alice").await;
    let url = hub_ws_url(&app.base_url(), app.tenant.id, "");
    let mut client = RawHubClient::connect(&url, Some(&token)).await.unwrap();
    let ending = client
        .ending(Duration::from_secs(5))
        .await
        .expect("closed after the handshake timeout");
    assert!(ending.records.is_empty(), "{:?}", ending.records);
    assert_eq!(ending.close_code, Some(1000));
}
