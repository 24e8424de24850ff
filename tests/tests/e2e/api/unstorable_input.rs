//! No input gives a 500: text PostgreSQL cannot store (U+0000), control characters in names,
//! deep nesting, numbers out of range and strings past their limits are each a 400 naming the
//! field, and nothing is stored.

use herald_tests::TestApp;
use herald_tests::chat::count;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts a 400 problem whose `errors` name `field`; returns the body.
async fn assert_400_naming(response: reqwest::Response, field: &str, what: &str) -> Value {
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 400, "{what}: {body}");
    assert!(
        body["errors"][field].is_array(),
        "{what}: expected errors.{field} in {body}"
    );
    body
}

fn notification(overrides: Value) -> Value {
    let mut body = json!({
        "userId": "alice",
        "subject": "Hello",
        "message": "World",
        "type": "SystemAnnouncement",
    });
    body.as_object_mut()
        .unwrap()
        .extend(overrides.as_object().unwrap().clone());
    body
}

async fn stored(app: &TestApp, table: &str) -> i64 {
    count(app, &format!("SELECT count(*) FROM {table}")).await
}

#[tokio::test]
async fn nul_in_any_json_text_field_is_a_400_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "subject": "a\u{0}b" }), "subject"),
        (json!({ "message": "a\u{0}b" }), "message"),
        (json!({ "summary": "\u{0}" }), "summary"),
        (json!({ "clientId": "c\u{0}" }), "clientId"),
        (json!({ "metadata": { "k": "v\u{0}" } }), "metadata.k"),
        (json!({ "metadata": { "k\u{0}": "v" } }), "metadata"),
        (json!({ "htmlContent": "<p>\u{0}</p>" }), "htmlContent"),
    ];
    for (overrides, field) in &cases {
        for path in ["Notifications", "Notifications/test/send-email"] {
            let response = app
                .as_backend(&app.tenant, Method::POST, path)
                .json(&notification(overrides.clone()))
                .send()
                .await
                .unwrap();
            assert_400_naming(response, field, &format!("{path} {overrides}")).await;
        }
    }
    // Control characters in names and ids.
    let response = app
        .as_backend(&app.tenant, Method::POST, "Notifications")
        .json(&notification(json!({ "clientId": "line\nbreak" })))
        .send()
        .await
        .unwrap();
    assert_400_naming(response, "clientId", "clientId with a newline").await;

    for (body, field) in [
        (
            json!({ "type": "Group", "name": "Ops\u{0}", "memberIds": ["bob"] }),
            "name",
        ),
        (
            json!({ "type": "Group", "name": "Ops\u{1b}[2J", "memberIds": ["bob"] }),
            "name",
        ),
        (
            json!({ "type": "Group", "name": "Ops", "memberIds": ["b\u{0}b"] }),
            "memberIds[0]",
        ),
    ] {
        let response = app
            .as_user_of(&app.tenant, "alice", Method::POST, "Chat")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_400_naming(response, field, &body.to_string()).await;
    }
    for body in [
        json!({ "name": "news\u{0}" }),
        json!({ "name": "ne\r\nws" }),
        json!({ "name": "n", "description": "\u{0}" }),
    ] {
        let response = app
            .as_backend(&app.tenant, Method::POST, "Topics")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    let response = app
        .as_backend(&app.tenant, Method::PUT, "Users/alice")
        .json(&json!({ "displayName": "Al\u{0}ice" }))
        .send()
        .await
        .unwrap();
    assert_400_naming(response, "displayName", "displayName with NUL").await;

    for table in [
        "notifications",
        "chats",
        "topics",
        "recipients",
        "schedules",
    ] {
        assert_eq!(stored(&app, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn nul_in_query_path_and_headers_is_a_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let query = app
        .as_backend(&app.tenant, Method::GET, "Notifications?userId=a%00b")
        .send()
        .await
        .unwrap();
    assert_400_naming(query, "userId", "NUL in a query value").await;
    let search = app
        .as_backend(
            &app.tenant,
            Method::GET,
            "Notifications?userId=alice&filter=x%00",
        )
        .send()
        .await
        .unwrap();
    assert_400_naming(search, "filter", "NUL in the search filter").await;

    let path = app
        .as_backend(&app.tenant, Method::PUT, "Users/al%00ice")
        .json(&json!({ "displayName": "Alice" }))
        .send()
        .await
        .unwrap();
    assert_400_naming(path, "userId", "NUL in a path id").await;
    let topic = app
        .as_backend(&app.tenant, Method::PUT, "Topics/news%0A/subscribers")
        .json(&json!({ "userIds": ["alice"] }))
        .send()
        .await
        .unwrap();
    assert_400_naming(topic, "topicId", "newline in a path id").await;

    // A header value with a control byte other than tab never reaches a route: the HTTP parser
    // refuses the request. Sent over a raw socket, since HTTP clients will not send it.
    let body = notification(json!({})).to_string();
    let raw = format!(
        "POST /tenant/{}/v1/Notifications HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\
         Idempotency-Key: k\0ey\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        app.tenant.id,
        app.tenant.api_key,
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.api.port))
        .await
        .unwrap();
    socket.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // A tab is a legal header byte; the Idempotency-Key's own rule refuses it, by name.
    let tab = app
        .as_backend(&app.tenant, Method::POST, "Notifications")
        .header("Idempotency-Key", "k\tey")
        .json(&notification(json!({})))
        .send()
        .await
        .unwrap();
    assert_400_naming(tab, "Idempotency-Key", "tab in Idempotency-Key").await;
    let of_user = app
        .as_backend(&app.tenant, Method::GET, "Chat")
        .header("Of-User-Id", "al\tice")
        .send()
        .await
        .unwrap();
    assert_eq!(of_user.status(), 400);

    for table in ["notifications", "idempotency_keys", "recipients", "topics"] {
        assert_eq!(stored(&app, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn deep_nesting_and_numbers_out_of_range_are_400s() {
    let app = TestApp::spawn().await;
    let depth = 50_000;
    let deep = format!(
        r#"{{"userId":"alice","subject":"s","message":"m","type":"SystemAnnouncement","metadata":{}1{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let deep_object = format!(
        r#"{{"userId":"alice","metadata":{}"x"{}}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    let deep_user_id = format!(
        r#"{{"userId":{}"x"{}}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    for (path, body) in [
        ("Notifications", &deep),
        ("Notifications", &deep_object),
        ("Auth/token-exchange", &deep_user_id),
        ("Broadcasts", &deep_object),
        ("Topics", &deep_object),
    ] {
        let response = app
            .as_backend(&app.tenant, Method::POST, path)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    let chat = app
        .as_user_of(&app.tenant, "alice", Method::POST, "Chat")
        .header("Content-Type", "application/json")
        .body(deep_object.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 400);

    // 1e400 does not fit any JSON number type serde_json parses: the document itself is refused.
    for (expires, field) in [
        ("1e400", "body"),
        ("99999999999999999999999", "expiresIn"),
        ("-1", "expiresIn"),
        ("1.5", "expiresIn"),
    ] {
        let response = app
            .as_backend(&app.tenant, Method::POST, "Auth/token-exchange")
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"userId":"alice","expiresIn":{expires}}}"#))
            .send()
            .await
            .unwrap();
        assert_400_naming(response, field, expires).await;
    }
    for query in [
        "Notifications?userId=alice&pageSize=99999999999999999999",
        "Notifications?userId=alice&pageNumber=-99999999999999999999",
        "Notifications?userId=alice&pageNumber=2147483647&pageSize=100",
        "Notifications/analytics/failed-notifications?limit=99999999999999999999",
    ] {
        let response = app
            .as_backend(&app.tenant, Method::GET, query)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status == 400 || status == 200, "{query}: {status}");
    }
    assert_eq!(stored(&app, "notifications").await, 0);
}

/// Builds the overrides of a notification body around one string.
type BodyWith = fn(String) -> Value;

#[tokio::test]
async fn strings_at_each_documented_limit_pass_and_one_past_is_a_400() {
    let app = TestApp::spawn().await;
    let limits: [(&str, usize, BodyWith); 6] = [
        ("subject", 200, |s| json!({ "subject": s })),
        ("message", 10_000, |s| json!({ "message": s })),
        ("summary", 500, |s| json!({ "summary": s })),
        ("clientId", 128, |s| json!({ "clientId": s })),
        ("metadata.k", 1_024, |s| json!({ "metadata": { "k": s } })),
        ("metadata", 64, |s| json!({ "metadata": { s: "v" } })),
    ];
    for (field, limit, build) in limits {
        // Multi-byte characters: limits count characters, not bytes.
        let at = app
            .as_backend(&app.tenant, Method::POST, "Notifications")
            .json(&notification(build("é".repeat(limit))))
            .send()
            .await
            .unwrap();
        assert_eq!(at.status(), 201, "{field} at {limit}");
        let past = app
            .as_backend(&app.tenant, Method::POST, "Notifications")
            .json(&notification(build("é".repeat(limit + 1))))
            .send()
            .await
            .unwrap();
        assert_400_naming(past, field, &format!("{field} at {}", limit + 1)).await;
    }
    assert_eq!(stored(&app, "notifications").await, 6);

    for (limit, expected) in [(200, 201), (201, 400)] {
        let response = app
            .as_user_of(&app.tenant, "alice", Method::POST, "Chat")
            .json(&json!({ "type": "Group", "name": "n".repeat(limit), "memberIds": ["bob"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "chat name of {limit}");
    }
    for (limit, expected) in [(100, 201), (101, 400)] {
        let response = app
            .as_backend(&app.tenant, Method::POST, "Topics")
            .json(&json!({ "name": "t".repeat(limit) }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "topic name of {limit}");
    }
    let long_id = "u".repeat(129);
    let response = app
        .as_backend(&app.tenant, Method::PUT, &format!("Users/{long_id}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_400_naming(response, "userId", "user id of 129").await;
    assert_eq!(stored(&app, "chats").await, 1);
    assert_eq!(stored(&app, "topics").await, 1);
    assert_eq!(stored(&app, "recipients").await, 0);
}

#[tokio::test]
async fn email_addresses_the_mailer_cannot_send_are_400s_everywhere() {
    let app = TestApp::spawn().await;
    let hostile = [
        "Foo\r\nBcc: x <v@example.test>",
        "a@x, b@y <v@example.test>",
        "v@[127.0.0.1]",
    ];
    for email in hostile {
        for path in ["Notifications", "Notifications/test/send-email"] {
            let response = app
                .as_backend(&app.tenant, Method::POST, path)
                .json(&notification(json!({ "email": email })))
                .send()
                .await
                .unwrap();
            assert_400_naming(response, "email", &format!("{path} {email:?}")).await;
        }
        let response = app
            .as_backend(&app.tenant, Method::PUT, "Users/alice")
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        assert_400_naming(response, "email", &format!("profile {email:?}")).await;
    }
    assert_eq!(stored(&app, "notifications").await, 0);
    assert_eq!(stored(&app, "recipients").await, 0);

    let named = app
        .as_backend(&app.tenant, Method::PUT, "Users/alice")
        .json(&json!({ "email": "\"Lovelace, Ada\" <ada@example.test>" }))
        .send()
        .await
        .unwrap();
    assert!(named.status().is_success(), "{}", named.status());
}
