//! Bad input gets a problem+json answer naming what is wrong, never a 500.

use herald_tests::TestApp;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::Value;

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = json_body(response).await;
    for field in ["type", "title", "detail", "message"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    assert_eq!(body["status"], status);
    body
}

#[tokio::test]
async fn invalid_bodies_get_field_errors() {
    let app = TestApp::spawn().await;
    let exchange = |body: &'static str| {
        app.as_backend(&app.tenant, Method::POST, "Auth/token-exchange")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        ("{\"userId\": ", "body", "not valid JSON"),
        ("", "body", "empty"),
        ("[]", "body", "must be a JSON object"),
        ("{}", "userId", "Missing field `userId`"),
        ("{\"userId\": 42}", "userId", "Invalid type"),
        ("{\"userId\": \"has space\"}", "userId", "only letters"),
        (
            "{\"userId\": \"a\", \"expiresIn\": \"soon\"}",
            "expiresIn",
            "Invalid type",
        ),
        (
            "{\"userId\": \"a\", \"expiresIn\": 1}",
            "expiresIn",
            "between 60",
        ),
    ];
    for (body, field, message) in cases {
        let problem = problem(exchange(body).await.unwrap(), 400).await;
        assert_eq!(problem["title"], "Validation Error");
        let messages = problem["errors"][field]
            .as_array()
            .unwrap_or_else(|| panic!("{body}: {problem}"));
        assert!(
            messages
                .iter()
                .any(|m| m.as_str().unwrap().contains(message)),
            "{body}: {problem}"
        );
    }

    let both = problem(
        exchange("{\"userId\": \"\", \"expiresIn\": 5}")
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(
        both["errors"]["userId"].is_array() && both["errors"]["expiresIn"].is_array(),
        "every problem at once: {both}"
    );
}

#[tokio::test]
async fn malformed_path_ids_name_the_parameter() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!(
            "{}/tenant/not-a-uuid/v1/Auth/whoami",
            app.base_url()
        ))
        .header("X-API-Key", &app.tenant.api_key)
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert!(
        body["errors"]["tenantId"][0]
            .as_str()
            .unwrap()
            .contains("UUID"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_content_type_unknown_routes_and_methods_are_problems_too() {
    let app = TestApp::spawn().await;
    let text = app
        .as_backend(&app.tenant, Method::POST, "Auth/token-exchange")
        .header("Content-Type", "text/plain")
        .body("userId=alice")
        .send()
        .await
        .unwrap();
    problem(text, 415).await;
    problem(
        app.client
            .get(format!("{}/nowhere", app.base_url()))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let wrong_method = app
        .as_backend(&app.tenant, Method::DELETE, "Auth/token-exchange")
        .send()
        .await
        .unwrap();
    problem(wrong_method, 405).await;
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413() {
    let app = TestApp::spawn().await;
    let huge = format!("{{\"userId\": \"{}\"}}", "a".repeat(1024 * 1024));
    let declared = app
        .as_backend(&app.tenant, Method::POST, "Auth/token-exchange")
        .header("Content-Type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    problem(declared, 413).await;

    // Without Content-Length (chunked), the limit holds while reading.
    let stream = futures::stream::iter(
        huge.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let chunked = app
        .as_backend(&app.tenant, Method::POST, "Auth/token-exchange")
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(chunked, 413).await;

    // Just under the limit is parsed normally (and rejected for its content, not its size).
    let near = format!("{{\"userId\": \"{}\"}}", "a".repeat(1000 * 1000));
    let response = app
        .as_backend(&app.tenant, Method::POST, "Auth/token-exchange")
        .json(&serde_json::from_str::<Value>(&near).unwrap())
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert!(body["errors"]["userId"].is_array());
}
