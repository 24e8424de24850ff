//! Passwords in connection URLs never reach the log, not even in the connect error.

use std::time::Duration;

use herald_tests::database::TestDatabase;
use herald_tests::process::{HeraldProcess, closed_port};
use herald_tests::{TEST_JWT_SECRET, redis_url};

fn env(database_url: &str, redis_url: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis_url),
        ("HERALD_JWT_SECRET", TEST_JWT_SECRET),
        ("HERALD_HOST", "127.0.0.1"),
        ("HERALD_AUTO_MIGRATE", "false"),
        ("RUST_LOG", "debug"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Starts herald-api, which must fail to start; returns everything it printed.
async fn failed_start_output(env: &[(String, String)]) -> String {
    let mut api = HeraldProcess::spawn("herald-api", 0, env);
    let status = api.wait_exit(Duration::from_secs(60)).await;
    assert!(
        status.is_some_and(|s| !s.success()),
        "herald-api should have exited with an error:\n{}",
        api.logs()
    );
    api.logs()
}

#[tokio::test]
async fn redis_and_postgres_passwords_are_redacted_in_connect_errors() {
    let db = TestDatabase::create().await;
    let closed = closed_port();

    // PostgreSQL is reachable (trust auth ignores the password); Redis is a closed port.
    let pg_with_query_password = format!("{}?password=pg-query-secret", db.url);
    let redis_with_password = format!("redis://:redis-secret@127.0.0.1:{closed}/0");
    let output = failed_start_output(&env(&pg_with_query_password, &redis_with_password)).await;
    assert!(output.contains("cannot connect to Redis"), "{output}");
    assert!(output.contains("REDACTED"), "{output}");
    for secret in ["redis-secret", "pg-query-secret"] {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }

    // PostgreSQL unreachable, its password given both ways.
    let pg_closed = format!(
        "postgres://postgres:pg-user-secret@127.0.0.1:{closed}/herald?sslpassword=pg-ssl-secret&password=pg-query-secret"
    );
    let output = failed_start_output(&env(&pg_closed, &redis_url())).await;
    assert!(output.contains("cannot connect to PostgreSQL"), "{output}");
    for secret in ["pg-user-secret", "pg-ssl-secret", "pg-query-secret"] {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }
}
