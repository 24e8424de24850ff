//! Running Herald: health, readiness, startup checks, shutdown and the admin CLI.

use std::time::Duration;

use herald_tests::database::TestDatabase;
use herald_tests::process::{HeraldProcess, run};
use herald_tests::redis_server::RedisServer;
use herald_tests::test_app::json_body;
use herald_tests::{TEST_JWT_SECRET, TestApp, redis_url};
use serde_json::Value;

fn env_for(database_url: &str, redis: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis),
        ("HERALD_REDIS_PREFIX", "ops"),
        ("HERALD_JWT_SECRET", TEST_JWT_SECRET),
        ("HERALD_HOST", "127.0.0.1"),
        ("HERALD_AUTO_MIGRATE", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn healthz_and_readyz_report_a_healthy_node() {
    let app = TestApp::spawn().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .client
        .get(format!("{}/readyz", app.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body = json_body(ready).await;
    assert_eq!(
        (body["postgres"].as_str(), body["redis"].as_str()),
        (Some("ok"), Some("ok"))
    );
}

#[tokio::test]
async fn readyz_is_503_while_redis_is_unreachable() {
    // A Redis of this test's own, so stopping it disturbs nobody else.
    let mut redis = RedisServer::start().await;
    let redis_url = redis.url();
    let db = TestDatabase::create().await;
    let mut api = HeraldProcess::start("herald-api", &env_for(&db.url, &redis_url)).await;
    api.wait_healthy().await;
    let readyz = format!("{}/readyz", api.base_url());
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 200);

    redis.stop();
    let response = reqwest::get(&readyz).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["postgres"], "ok");
    assert_ne!(body["redis"], "ok");
    // The process stays up (liveness is not readiness).
    assert_eq!(
        reqwest::get(format!("{}/healthz", api.base_url()))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_api_refuses_an_unmigrated_database_and_says_what_to_do() {
    let db = TestDatabase::create_empty().await;
    let mut api = HeraldProcess::spawn("herald-api", 0, &env_for(&db.url, &redis_url()));
    let status = api
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("it must exit");
    assert!(!status.success());
    let logs = api.logs();
    assert!(
        logs.contains("not migrated") && logs.contains("herald-admin migrate"),
        "{logs}"
    );

    // `herald-admin migrate` fixes it, and the API then starts.
    let migrated = run(
        "herald-admin",
        &["migrate"],
        &env_for(&db.url, &redis_url()),
    );
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let mut api = HeraldProcess::start("herald-api", &env_for(&db.url, &redis_url())).await;
    api.wait_healthy().await;
}

#[tokio::test]
async fn auto_migrate_prepares_an_empty_database() {
    let db = TestDatabase::create_empty().await;
    let mut env = env_for(&db.url, &redis_url());
    env.push(("HERALD_AUTO_MIGRATE".into(), "true".into()));
    let mut api = HeraldProcess::start("herald-api", &env).await;
    api.wait_healthy().await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tenants'",
    )
    .fetch_one(&db.pool().await)
    .await
    .unwrap();
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn a_bad_setting_stops_startup_naming_the_variable() {
    let db = TestDatabase::create().await;
    let mut env = env_for(&db.url, &redis_url());
    env.push(("HERALD_JWT_TTL_SECS".into(), "twelve hours".into()));
    env.push(("HERALD_LOG_FORMAT".into(), "xml".into()));
    let output = run("herald-api", &[], &env);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HERALD_JWT_TTL_SECS") && stderr.contains("HERALD_LOG_FORMAT"),
        "{stderr}"
    );

    let production = run(
        "herald-api",
        &[],
        &[("HERALD_ENV".into(), "production".into())],
    );
    let stderr = String::from_utf8_lossy(&production.stderr);
    assert!(stderr.contains("HERALD_JWT_SECRET: required"), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_the_api_gracefully() {
    let app = TestApp::spawn().await;
    let mut api = app.api;
    api.terminate();
    let status = api
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status}:\n{}", api.logs());
}

#[tokio::test]
async fn admin_creates_tenants_and_keys_that_work() {
    let app = TestApp::spawn().await;
    let env = app.env();
    let created = run(
        "herald-admin",
        &["tenant", "create", "Initech", "--json"],
        &env,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value =
        serde_json::from_slice(&created.stdout).expect("exactly one JSON document on stdout");
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiKey", "tenantId"]);
    let tenant_id = created["tenantId"].as_str().unwrap();

    let listed = run("herald-admin", &["tenant", "list"], &env);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(tenant_id));

    let second = run(
        "herald-admin",
        &["apikey", "create", "--tenant", tenant_id, "--json"],
        &env,
    );
    let second: Value = serde_json::from_slice(&second.stdout).unwrap();
    for key in [&created["apiKey"], &second["apiKey"]] {
        let response = app
            .client
            .get(format!(
                "{}/tenant/{tenant_id}/v1/Auth/whoami",
                app.base_url()
            ))
            .header("X-API-Key", key.as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let unknown = run(
        "herald-admin",
        &["apikey", "list", "--tenant", &uuid::Uuid::nil().to_string()],
        &env,
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant"));
    let empty_name = run("herald-admin", &["tenant", "create", " "], &env);
    assert!(!empty_name.status.success());
}
