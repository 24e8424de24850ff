//! Token lifetimes and revocation through HTTP against the real `herald-api`: `nbf` and `iat`
//! are checked on every token kind, external RS256 tokens must carry the configured `iss` and
//! `aud`, and revoking an API key revokes the user tokens it minted.

use std::time::{Duration, Instant};

use herald_tests::process::run;
use herald_tests::test_app::json_body;
use herald_tests::tokens::{RS256_PUBLIC_KEY_PEM, hs256, now, rs256};
use herald_tests::{Tenant, TestApp};
use serde_json::{Value, json};

async fn whoami(app: &TestApp, token: &str) -> reqwest::Response {
    app.as_user(&app.tenant, token, reqwest::Method::GET, "Auth/whoami")
        .send()
        .await
        .expect("whoami")
}

/// Asserts a 401 problem body whose detail names `why`.
async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let response = whoami(app, token).await;
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 401, "{why}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(why), "{detail:?} does not name {why:?}");
}

async fn assert_accepted(app: &TestApp, token: &str) {
    let response = whoami(app, token).await;
    let status = response.status();
    assert_eq!(status, 200, "{}", json_body(response).await);
}

#[tokio::test]
async fn hs256_tokens_not_valid_yet_or_issued_in_the_future_get_401() {
    let app = TestApp::spawn().await;
    let claims = |iat: u64, nbf: Option<u64>| {
        let mut claims = json!({
            "sub": "alice", "tid": app.tenant.id, "iat": iat, "exp": now() + 3600, "iss": "herald",
        });
        if let Some(nbf) = nbf {
            claims["nbf"] = nbf.into();
        }
        hs256(&claims)
    };
    assert_refused(&app, &claims(now(), Some(now() + 600)), "not valid yet").await;
    assert_refused(&app, &claims(now() + 600, None), "issued in the future").await;
    // The genuine article: the refusals above were about `nbf` and `iat`.
    assert_accepted(&app, &claims(now(), Some(now() - 10))).await;
}

#[tokio::test]
async fn external_rs256_tokens_need_the_configured_issuer_and_audience_and_a_past_nbf() {
    let app = TestApp::spawn_with(&[
        ("HERALD_JWT_RS256_PUBLIC_KEY", RS256_PUBLIC_KEY_PEM),
        ("HERALD_JWT_RS256_ISSUER", "https://id.example.test"),
        ("HERALD_JWT_RS256_AUDIENCE", "herald"),
    ])
    .await;
    let token = |edit: &dyn Fn(&mut Value)| {
        let mut claims = json!({
            "sub": "alice", "tid": app.tenant.id, "iat": now(), "exp": now() + 3600,
            "iss": "https://id.example.test", "aud": "herald",
        });
        edit(&mut claims);
        rs256(&claims)
    };
    assert_accepted(&app, &token(&|_| {})).await;
    let without = |claim: &'static str| {
        token(&move |claims| {
            claims.as_object_mut().unwrap().remove(claim);
        })
    };
    assert_refused(&app, &without("iss"), "missing claim `iss`").await;
    assert_refused(&app, &without("aud"), "missing claim `aud`").await;
    assert_refused(
        &app,
        &token(&|c| c["aud"] = json!("someone-else")),
        "audience",
    )
    .await;
    assert_refused(
        &app,
        &token(&|c| c["iss"] = json!("https://evil.test")),
        "issuer",
    )
    .await;
    assert_refused(
        &app,
        &token(&|c| c["nbf"] = json!(now() + 600)),
        "not valid yet",
    )
    .await;
    assert_refused(
        &app,
        &token(&|c| c["iat"] = json!(now() + 600)),
        "issued in the future",
    )
    .await;
}

/// Token exchange with `tenant`'s key `api_key`.
async fn exchange(app: &TestApp, tenant: &Tenant, api_key: &str) -> String {
    let tenant = Tenant {
        api_key: api_key.to_owned(),
        ..tenant.clone()
    };
    app.token_for(&tenant, "alice").await
}

#[tokio::test]
async fn revoking_an_api_key_revokes_the_user_tokens_it_minted() {
    let app = TestApp::spawn_with(&[("HERALD_JWT_REVOCATION_REFRESH_SECS", "1")]).await;
    let minted = app.token_for(&app.tenant, "alice").await;
    let before_key_ids = hs256(&json!({
        "sub": "alice", "tid": app.tenant.id, "iat": now(), "exp": now() + 3600, "iss": "herald",
    }));
    assert_accepted(&app, &minted).await;

    app.revoke_api_keys(&app.tenant);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = whoami(&app, &minted).await;
        if response.status() == 401 {
            let detail = json_body(response).await["detail"].clone();
            assert!(
                detail.as_str().unwrap_or_default().contains("revoked"),
                "{detail}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the token of a revoked key still works"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Rotation: a new key's tokens work; tokens minted before keys were recorded in them
    // (no `akid`) keep working until they expire.
    let created = run(
        "herald-admin",
        &[
            "apikey",
            "create",
            "--tenant",
            &app.tenant.id.to_string(),
            "--json",
        ],
        &app.env(),
    );
    assert!(created.status.success(), "{created:?}");
    let created: Value = serde_json::from_slice(&created.stdout).expect("json");
    let fresh = exchange(&app, &app.tenant, created["apiKey"].as_str().unwrap()).await;
    assert_accepted(&app, &fresh).await;
    assert_accepted(&app, &before_key_ids).await;
}
