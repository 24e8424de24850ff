//! Inbox list-page throughput for a user with 100,000 notifications, in a 1,000,000-row table,
//! next to pgbench running the naive page + count(*) SQL on the same table.
//!
//! Run with `scripts/bench inbox` (release build).

use std::time::{Duration, Instant};

use herald_benches::{closed_loop, ms};
use herald_tests::database::TestDatabase;
use herald_tests::process::HeraldProcess;
use herald_tests::{TEST_JWT_SECRET, redis_url};
use serde_json::Value;

const BENCH_USER_ROWS: i64 = 100_000;
const OTHER_USERS: i64 = 9_000;
const ROWS_PER_OTHER_USER: i64 = 100;
/// Pages read by the benchmark: the first 100 (1,000 newest notifications), as an inbox is
/// read in practice (infinite scroll).
const PAGES: u64 = 100;
const PAGE_SIZE: u64 = 10;
const CONCURRENCY: usize = 8;
const RUN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = TestDatabase::create().await;
    let pool = db.pool().await;
    let key = herald_shared::auth::api_key::generate();
    let mut tx = pool.begin().await?;
    let tenant = herald_shared::db::tenants::insert(&mut tx, "bench").await?;
    herald_shared::db::api_keys::insert(&mut tx, tenant.id, &key).await?;
    tx.commit().await?;

    let total = BENCH_USER_ROWS + OTHER_USERS * ROWS_PER_OTHER_USER;
    let seeding = Instant::now();
    seed(&pool, tenant.id, total).await?;
    println!(
        "seeded {total} notifications ({BENCH_USER_ROWS} for bench-user) in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.url.as_str()),
        ("REDIS_URL", &redis_url()),
        ("HERALD_REDIS_PREFIX", "bench"),
        ("HERALD_JWT_SECRET", TEST_JWT_SECRET),
        ("HERALD_HOST", "127.0.0.1"),
        ("HERALD_AUTO_MIGRATE", "false"),
        ("HERALD_DB_MAX_CONNECTIONS", "16"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut api = HeraldProcess::start("herald-api", &env).await;
    api.wait_healthy().await;
    let base = api.base_url();
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!(
            "{base}/tenant/{}/v1/Auth/token-exchange",
            tenant.id
        ))
        .header("X-API-Key", &key.plaintext)
        .json(&serde_json::json!({ "userId": "bench-user" }))
        .send()
        .await?
        .json()
        .await?;
    let token = token["token"].as_str().unwrap_or_default().to_owned();

    let url = format!("{base}/tenant/{}/v1/Notifications", tenant.id);
    let herald = match wrk(&url, &token)? {
        Some(figures) => figures,
        None => in_process_load(&client, &url, &token).await?,
    };
    drop(api);

    let pgbench_tps = pgbench(&db.url, tenant.id)?;

    println!();
    println!(
        "inbox list page (pageSize {PAGE_SIZE}, pages 1–{PAGES}, {CONCURRENCY} connections, {} s)",
        RUN.as_secs()
    );
    println!(
        "  user inbox: {BENCH_USER_ROWS} notifications; table: {total} rows; load: {}",
        herald.client
    );
    println!(
        "  herald GET /Notifications   {:>8.0} pages/s   p50 {}   p99 {}",
        herald.per_second, herald.p50, herald.p99
    );
    println!("  pgbench naive page+count(*) {pgbench_tps:>8.0} pages/s");
    println!(
        "  ratio herald / pgbench       {:>8.2}   (target ≥ 0.80)",
        herald.per_second / pgbench_tps
    );
    Ok(())
}

/// Throughput and latency of the HTTP load, as printed.
struct Figures {
    client: &'static str,
    per_second: f64,
    p50: String,
    p99: String,
}

/// Loads the API with `wrk` (a lean C client, like pgbench on the database side) when it is
/// installed, so the load generator takes as little CPU from the server as pgbench does.
fn wrk(url: &str, token: &str) -> anyhow::Result<Option<Figures>> {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        return Ok(None);
    }
    let script = std::env::temp_dir().join("herald-inbox-wrk.lua");
    std::fs::write(
        &script,
        format!(
            "counter = 0\n\
             request = function()\n\
               counter = counter + 1\n\
               return wrk.format(\"GET\", \"{path}?pageNumber=\" .. (counter % {PAGES} + 1) .. \"&pageSize={PAGE_SIZE}\", {{[\"Authorization\"] = \"Bearer {token}\"}})\n\
             end\n\
             done = function(summary, latency, requests)\n\
               io.write(string.format(\"RESULT %f %f %f %d\\n\", summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))\n\
             end\n",
            path = reqwest::Url::parse(url)?.path()
        ),
    )?;
    let run = |seconds: u64| {
        std::process::Command::new("wrk")
            .args([
                "-t",
                "2",
                "-c",
                &CONCURRENCY.to_string(),
                "-d",
                &format!("{seconds}s"),
                "-s",
            ])
            .arg(&script)
            .arg(url)
            .output()
    };
    run(2)?; // warm-up
    let output = run(RUN.as_secs())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<f64> = text
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .ok_or_else(|| anyhow::anyhow!("no result from wrk:\n{text}"))?;
    anyhow::ensure!(
        fields.len() == 4 && fields[3] == 0.0,
        "wrk saw non-2xx answers:\n{text}"
    );
    Ok(Some(Figures {
        client: "wrk",
        per_second: fields[0],
        p50: format!("{:.2} ms", fields[1]),
        p99: format!("{:.2} ms", fields[2]),
    }))
}

/// Fallback load from this process (when `wrk` is not installed).
async fn in_process_load(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<Figures> {
    let summary = {
        let url = url.to_owned();
        let token = token.to_owned();
        let run = |duration| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            closed_loop(CONCURRENCY, duration, move |n| {
                let request = client
                    .get(format!(
                        "{url}?pageNumber={}&pageSize={PAGE_SIZE}",
                        n % PAGES + 1
                    ))
                    .bearer_auth(&token)
                    .send();
                async move {
                    let response = request.await?;
                    anyhow::ensure!(response.status() == 200, "status {}", response.status());
                    let page: Value = response.json().await?;
                    anyhow::ensure!(
                        page["totalCount"] == BENCH_USER_ROWS,
                        "unexpected total {}",
                        page["totalCount"]
                    );
                    Ok(())
                }
            })
        };
        run(Duration::from_secs(2)).await?; // warm-up: caches, connection pools
        run(RUN).await?
    };
    Ok(Figures {
        client: "in-process reqwest",
        per_second: summary.per_second,
        p50: ms(summary.p50),
        p99: ms(summary.p99),
    })
}

/// One statement: `bench-user` gets the first 100k rows, 9,000 other users 100 each. Ids are
/// UUIDv7 built from each row's creation millisecond, exactly as Herald writes them.
async fn seed(pool: &sqlx::PgPool, tenant_id: uuid::Uuid, total: i64) -> anyhow::Result<()> {
    let start_ms = chrono::Utc::now().timestamp_millis() - total;
    sqlx::query(
        "INSERT INTO notifications (tenant_id, id, user_id, subject, message, type, priority, status, created_at, sent_at) \
         SELECT $1, \
                (lpad(to_hex($2 + g), 12, '0') || '7' || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid, \
                CASE WHEN g % 10 = 0 THEN 'bench-user' ELSE 'user-' || (g % 9000) END, \
                'Subject ' || g, 'Message body number ' || g || ' with some text to make it realistic.', \
                'SystemAnnouncement', 1, CASE WHEN g % 3 = 0 THEN 'Read' ELSE 'Sent' END, \
                to_timestamp(($2 + g) / 1000.0), to_timestamp(($2 + g) / 1000.0) \
         FROM generate_series(0, $3 - 1) AS g",
    )
    .bind(tenant_id)
    .bind(start_ms)
    .bind(total)
    .execute(pool)
    .await?;
    sqlx::query("VACUUM ANALYZE notifications")
        .execute(pool)
        .await?;
    Ok(())
}

/// pgbench with the naive inbox SQL: one page by offset plus count(*), per transaction.
fn pgbench(database_url: &str, tenant_id: uuid::Uuid) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join("herald-inbox-pgbench.sql");
    std::fs::write(
        &script,
        format!(
            "\\set page random(0, {last})\n\
             SELECT * FROM notifications WHERE tenant_id = '{tenant_id}' AND user_id = 'bench-user' \
             ORDER BY id DESC LIMIT {PAGE_SIZE} OFFSET :page * {PAGE_SIZE};\n\
             SELECT count(*) FROM notifications WHERE tenant_id = '{tenant_id}' AND user_id = 'bench-user';\n",
            last = PAGES - 1
        ),
    )?;
    let output = std::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &CONCURRENCY.to_string(),
            "-j",
            "2",
            "-T",
            &RUN.as_secs().to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(database_url)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output:\n{text}"))
}
