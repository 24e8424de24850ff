//! Authentication and tenancy through HTTP against the real `herald-api`.

use herald_tests::process::run;
use herald_tests::test_app::json_body;
use herald_tests::{TEST_JWT_SECRET, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

async fn assert_unauthorized(response: reqwest::Response, detail_contains: &str) {
    assert_eq!(response.status(), 401);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"herald\""),
        "{challenge}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = json_body(response).await;
    assert_eq!(body["status"], 401);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(detail_contains),
        "{detail:?} lacks {detail_contains:?}"
    );
    assert_eq!(body["message"], body["detail"]);
}

#[tokio::test]
async fn token_exchange_issues_a_bearer_token_for_the_user() {
    let app = TestApp::spawn().await;
    let response = app
        .as_backend(&app.tenant, Method::POST, "Auth/token-exchange")
        .json(&json!({ "userId": "alice@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 43_200);

    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_issuer(&["herald"]);
    let claims = jsonwebtoken::decode::<Value>(
        body["token"].as_str().unwrap(),
        &jsonwebtoken::DecodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        &validation,
    )
    .expect("a valid HS256 token")
    .claims;
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(claims["tid"], app.tenant.id.to_string());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        43_200
    );

    let whoami = app
        .as_user(
            &app.tenant,
            body["token"].as_str().unwrap(),
            Method::GET,
            "Auth/whoami",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body(whoami).await,
        json!({ "tenantId": app.tenant.id, "credential": "Bearer", "userId": "alice@example.com" })
    );
}

#[tokio::test]
async fn token_exchange_honours_expires_in_and_the_seed_path() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/api/Auth/token-exchange", app.base_url()))
        .header("X-API-Key", &app.tenant.api_key)
        .json(&json!({ "userId": "bob", "expiresIn": 600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    assert_eq!(body["expiresIn"], 600);
    let whoami = app
        .client
        .get(format!("{}/api/Auth/whoami", app.base_url()))
        .bearer_auth(body["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let whoami = json_body(whoami).await;
    assert_eq!(whoami["userId"], "bob");
    assert_eq!(whoami["tenantId"], app.tenant.id.to_string());
}

#[tokio::test]
async fn token_exchange_needs_the_api_key_not_a_user_token() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.tenant, "alice").await;
    let response = app
        .as_user(&app.tenant, &token, Method::POST, "Auth/token-exchange")
        .json(&json!({ "userId": "mallory" }))
        .send()
        .await
        .unwrap();
    assert_unauthorized(response, "API key").await;
}

#[tokio::test]
async fn missing_malformed_expired_and_forged_tokens_get_401() {
    let app = TestApp::spawn().await;
    let whoami = |auth: Option<String>| {
        let mut request = app.client.get(app.tenant_url(&app.tenant, "Auth/whoami"));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.send()
    };
    assert_unauthorized(whoami(None).await.unwrap(), "Authentication required").await;
    assert_unauthorized(
        whoami(Some("Bearer not-a-jwt".into())).await.unwrap(),
        "not a well-formed JWT",
    )
    .await;
    assert_unauthorized(
        whoami(Some("Basic YWxpY2U6c2VjcmV0".into())).await.unwrap(),
        "Bearer <token>",
    )
    .await;

    let claims = |exp: u64| json!({ "sub": "alice", "tid": app.tenant.id, "iat": now() - 7200, "exp": exp, "iss": "herald" });
    let expired = sign(&claims(now() - 3600), TEST_JWT_SECRET);
    assert_unauthorized(
        whoami(Some(format!("Bearer {expired}"))).await.unwrap(),
        "expired",
    )
    .await;
    let forged = sign(&claims(now() + 3600), "some-other-secret-0123456789abcdef");
    assert_unauthorized(
        whoami(Some(format!("Bearer {forged}"))).await.unwrap(),
        "signature",
    )
    .await;
    let wrong_issuer = sign(
        &json!({ "sub": "alice", "tid": app.tenant.id, "iat": now(), "exp": now() + 60, "iss": "someone-else" }),
        TEST_JWT_SECRET,
    );
    assert_unauthorized(
        whoami(Some(format!("Bearer {wrong_issuer}")))
            .await
            .unwrap(),
        "issuer",
    )
    .await;

    // The genuine article still works, so the refusals above were about the tokens.
    let valid = sign(&claims(now() + 3600), TEST_JWT_SECRET);
    assert_eq!(
        whoami(Some(format!("Bearer {valid}")))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_and_revoked_api_keys_get_401() {
    let app = TestApp::spawn().await;
    let call = |key: &str| {
        app.client
            .get(app.tenant_url(&app.tenant, "Auth/whoami"))
            .header("X-API-Key", key)
            .send()
    };
    assert_eq!(call(&app.tenant.api_key).await.unwrap().status(), 200);
    assert_unauthorized(
        call("nonsense").await.unwrap(),
        "Unknown or revoked API key",
    )
    .await;
    let mut altered = app.tenant.api_key.clone();
    altered.replace_range(20..21, if &altered[20..21] == "A" { "B" } else { "A" });
    assert_unauthorized(call(&altered).await.unwrap(), "Unknown or revoked API key").await;

    // Revoke through the real admin CLI, as an operator would.
    let env = app.env();
    let listing = run(
        "herald-admin",
        &["apikey", "list", "--tenant", &app.tenant.id.to_string()],
        &env,
    );
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing = String::from_utf8(listing.stdout).unwrap();
    let key_id = listing.split_whitespace().next().expect("a key id");
    assert!(listing.contains(&app.tenant.api_key[..12]), "{listing}");
    assert!(
        !listing.contains(&app.tenant.api_key),
        "the full key must never be listed"
    );
    let revoked = run("herald-admin", &["apikey", "revoke", key_id], &env);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert_unauthorized(
        call(&app.tenant.api_key).await.unwrap(),
        "Unknown or revoked API key",
    )
    .await;
}

#[tokio::test]
async fn a_valid_credential_of_another_tenant_gets_403() {
    let app = TestApp::spawn().await;
    let other = app.create_tenant("globex").await;
    let other_token = app.token_for(&other, "alice").await;

    let with_key = app
        .client
        .get(app.tenant_url(&app.tenant, "Auth/whoami"))
        .header("X-API-Key", &other.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 403);
    assert_eq!(json_body(with_key).await["status"], 403);

    let with_token = app
        .as_user(&app.tenant, &other_token, Method::GET, "Auth/whoami")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 403);

    let exchange = app
        .client
        .post(app.tenant_url(&app.tenant, "Auth/token-exchange"))
        .header("X-API-Key", &other.api_key)
        .json(&json!({ "userId": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        exchange.status(),
        403,
        "no token for a tenant the key does not belong to"
    );
}
