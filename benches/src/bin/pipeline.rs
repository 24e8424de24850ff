//! The delivery pipeline's figures, each next to its physical limit measured in the same run:
//! - broadcast fan-out of 100,000 recipients (every inbox row written and every event published)
//!   beside a raw PostgreSQL `COPY` of the same rows and raw pipelined Redis `PUBLISH`es;
//! - delay of scheduled deliveries past their time (p50/p99);
//! - emails per second into a local SMTP sink.
//!
//! Run with `scripts/bench pipeline` (release build).

use std::time::{Duration, Instant};

use futures::StreamExt;
use herald_benches::{ms, summarize};
use herald_tests::database::TestDatabase;
use herald_tests::process::HeraldProcess;
use herald_tests::smtp::{SmtpBehaviour, SmtpServer};
use herald_tests::{TEST_JWT_SECRET, redis_url};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const RECIPIENTS: i64 = 100_000;
const SCHEDULED: usize = 40;
const EMAILS: i64 = 2_000;

struct Setup {
    db: TestDatabase,
    pool: PgPool,
    tenant: Uuid,
    api_key: String,
    prefix: String,
}

impl Setup {
    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", self.db.url.as_str()),
            ("REDIS_URL", &redis_url()),
            ("HERALD_REDIS_PREFIX", &self.prefix),
            ("HERALD_JWT_SECRET", TEST_JWT_SECRET),
            ("HERALD_HOST", "127.0.0.1"),
            ("HERALD_AUTO_MIGRATE", "false"),
            ("RUST_LOG", "warn"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    async fn start(&self, binary: &str, extra: &[(&str, &str)]) -> HeraldProcess {
        HeraldProcess::start(binary, &self.env(extra)).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = TestDatabase::create().await;
    let pool = db.pool().await;
    let key = herald_shared::auth::api_key::generate();
    let mut tx = pool.begin().await?;
    let tenant = herald_shared::db::tenants::insert(&mut tx, "bench").await?;
    herald_shared::db::api_keys::insert(&mut tx, tenant.id, &key).await?;
    tx.commit().await?;
    let setup = Setup {
        db,
        pool,
        tenant: tenant.id,
        api_key: key.plaintext,
        prefix: format!("bench{}", &Uuid::new_v4().simple().to_string()[..8]),
    };
    sqlx::query(
        "INSERT INTO recipients (tenant_id, user_id) SELECT $1, 'user-' || lpad(g::text, 6, '0') FROM generate_series(1, $2) g",
    )
    .bind(setup.tenant)
    .bind(RECIPIENTS)
    .execute(&setup.pool)
    .await?;
    sqlx::query("VACUUM ANALYZE").execute(&setup.pool).await?;

    let mut api = setup.start("herald-api", &[]).await;
    api.wait_healthy().await;
    let chunk = std::env::var("HERALD_FANOUT_CHUNK_SIZE").unwrap_or_else(|_| "10000".to_owned());
    let mut fanout = setup
        .start(
            "herald-fanout",
            &[
                ("RUST_LOG", "warn,herald_workers::fanout=debug"),
                ("HERALD_FANOUT_CHUNK_SIZE", &chunk),
            ],
        )
        .await;
    fanout.wait_healthy().await;

    let fan_out = fan_out(&setup, &api).await?;
    if std::env::var_os("HERALD_BENCH_VERBOSE").is_some() {
        println!("{}", fanout.logs());
    }
    let copy = copy_baseline(&setup).await?;
    let publish = publish_baseline(&setup).await?;
    let delays = scheduled_delays(&setup, &api).await?;
    drop(fanout);
    let (emails, email_limits) = emails_per_second(&setup, &api).await?;

    let rate = |d: Duration| RECIPIENTS as f64 / d.as_secs_f64();
    println!();
    println!("broadcast fan-out, {RECIPIENTS} recipients (allUsers), one herald-fanout process");
    println!(
        "  herald: all rows written + events published   {:>7.2} s   {:>9.0} recipients/s",
        fan_out.as_secs_f64(),
        rate(fan_out)
    );
    println!(
        "  limit:  PostgreSQL COPY of the same rows      {:>7.2} s   {:>9.0} rows/s",
        copy.as_secs_f64(),
        rate(copy)
    );
    println!(
        "  limit:  Redis PUBLISH, pipelined              {:>7.2} s   {:>9.0} messages/s",
        publish.as_secs_f64(),
        rate(publish)
    );
    println!(
        "  ratio herald / COPY                           {:>7.2}   (target: 100k in ≤ 2 s)",
        fan_out.as_secs_f64() / copy.as_secs_f64()
    );
    println!(
        "scheduled delivery, {SCHEDULED} notifications: delay past scheduledFor  p50 {}   p99 {}",
        ms(delays.p50),
        ms(delays.p99)
    );
    println!("email into a local SMTP sink (aiosmtpd), {EMAILS} emails");
    println!(
        "  herald: broadcast with email → all accepted  {emails:>9.0} emails/s   (target ≥ 500)"
    );
    println!(
        "  limit:  lettre straight into the same sink   {:>9.0} emails/s   (its pool leaves Nagle on)",
        email_limits.lettre
    );
    println!(
        "  limit:  herald's SMTP pool straight into it  {:>9.0} emails/s   (TCP_NODELAY)",
        email_limits.own_pool
    );
    Ok(())
}

/// POST the broadcast, then wait for every recipient's event on Redis (a pattern subscription
/// over the tenant's channels) and the broadcast to be `Completed`.
async fn fan_out(setup: &Setup, api: &HeraldProcess) -> anyhow::Result<Duration> {
    let client = redis::Client::open(redis_url())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub
        .psubscribe(format!("{}:t:{}:u:*", setup.prefix, setup.tenant))
        .await?;
    let started = Instant::now();
    let response: Value = reqwest::Client::new()
        .post(format!("{}/tenant/{}/v1/Broadcasts", api.base_url(), setup.tenant))
        .header("X-API-Key", &setup.api_key)
        .json(&json!({ "allUsers": true, "subject": "Hello everyone", "message": "A benchmark broadcast.", "type": "SystemAnnouncement" }))
        .send()
        .await?
        .json()
        .await?;
    let broadcast = Uuid::parse_str(response["id"].as_str().unwrap_or_default())?;
    let mut messages = pubsub.on_message();
    let mut received = 0;
    while received < RECIPIENTS {
        tokio::time::timeout(Duration::from_secs(60), messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("fan-out: only {received} events in 60 s"))?
            .ok_or_else(|| anyhow::anyhow!("fan-out: pub/sub closed after {received} events"))?;
        received += 1;
    }
    // Events can arrive a moment before the final chunk's transaction marks it `Completed`.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM broadcasts WHERE id = $1")
            .bind(broadcast)
            .fetch_one(&setup.pool)
            .await?;
        if status == "Completed" || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let (status, delivered): (String, i32) =
        sqlx::query_as("SELECT status, delivered FROM broadcasts WHERE id = $1")
            .bind(broadcast)
            .fetch_one(&setup.pool)
            .await?;
    anyhow::ensure!(
        status == "Completed" && i64::from(delivered) == RECIPIENTS,
        "{status} {delivered}"
    );
    Ok(elapsed)
}

/// COPY the same 100k notification rows (another broadcast id) into the same table and indexes.
async fn copy_baseline(setup: &Setup) -> anyhow::Result<Duration> {
    let broadcast = Uuid::now_v7();
    let mut data = String::with_capacity(RECIPIENTS as usize * 200);
    for i in 1..=RECIPIENTS {
        let (id, at) = herald_shared::domain::ids::new_id();
        data.push_str(&format!(
            "{}\t{id}\tuser-{i:06}\tHello everyone\tA benchmark broadcast.\tSystemAnnouncement\t1\tSent\t{}\t{}\t{{}}\t{broadcast}\n",
            setup.tenant,
            at.to_rfc3339(),
            at.to_rfc3339()
        ));
    }
    let mut conn = setup.pool.acquire().await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY notifications (tenant_id, id, user_id, subject, message, type, priority, status, created_at, sent_at, metadata, broadcast_id) FROM STDIN",
        )
        .await?;
    copy.send(data.as_bytes()).await?;
    copy.finish().await?;
    Ok(started.elapsed())
}

/// The same number of event publishes to per-user channels, pipelined like the fan-out's.
async fn publish_baseline(setup: &Setup) -> anyhow::Result<Duration> {
    let mut conn = redis::Client::open(redis_url())?
        .get_multiplexed_async_connection()
        .await?;
    let payload = r#"{"type":"Message","id":"0195f3c2-7b1e-7cc1-9d2a-4c1f9e1b2a3d","parentId":null,"createdAt":"2026-11-21T00:00:00.000Z"}"#;
    let started = Instant::now();
    for chunk in (1..=RECIPIENTS).collect::<Vec<_>>().chunks(5_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.publish(format!("{}:baseline:u:user-{i:06}", setup.prefix), payload)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
    }
    Ok(started.elapsed())
}

/// Notifications scheduled 2–6 s ahead; how late each event arrives.
async fn scheduled_delays(
    setup: &Setup,
    api: &HeraldProcess,
) -> anyhow::Result<herald_benches::Summary> {
    let mut pubsub = redis::Client::open(redis_url())?.get_async_pubsub().await?;
    let channel =
        herald_shared::events::user_channel(&setup.prefix, setup.tenant, "scheduled-user");
    pubsub.subscribe(&channel).await?;
    let client = reqwest::Client::new();
    let mut due = std::collections::HashMap::new();
    let begin = chrono::Utc::now();
    for i in 0..SCHEDULED {
        let when = begin + chrono::Duration::milliseconds(2_000 + (i as i64) * 100);
        let created: Value = client
            .post(format!("{}/tenant/{}/v1/Notifications", api.base_url(), setup.tenant))
            .header("X-API-Key", &setup.api_key)
            .json(&json!({ "userId": "scheduled-user", "subject": "s", "message": "m", "type": "InactivityReminder", "scheduledFor": when.to_rfc3339() }))
            .send()
            .await?
            .json()
            .await?;
        due.insert(created["id"].as_str().unwrap_or_default().to_owned(), when);
    }
    let mut messages = pubsub.on_message();
    let mut delays = Vec::new();
    while delays.len() < SCHEDULED {
        let message = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("closed"))?;
        let arrived = chrono::Utc::now();
        let event: Value = serde_json::from_str(&message.get_payload::<String>()?)?;
        if let Some(when) = due.get(event["id"].as_str().unwrap_or_default()) {
            delays.push((arrived - *when).to_std().unwrap_or_default());
        }
    }
    Ok(summarize(delays, Duration::from_secs(1)))
}

/// The sink's capacity, sending the benchmark's emails straight to it, 32 at a time.
struct EmailLimits {
    /// lettre's pooled transport.
    lettre: f64,
    /// The pool `herald-email` sends with, without the queue and the database.
    own_pool: f64,
}

/// A broadcast with email to recipients that have addresses: emails accepted per second, and
/// the sink's own capacity (the same number sent straight to it).
async fn emails_per_second(
    setup: &Setup,
    api: &HeraldProcess,
) -> anyhow::Result<(f64, EmailLimits)> {
    let smtp = SmtpServer::start(SmtpBehaviour::Sink);
    let limit = EmailLimits {
        lettre: smtp_limit(&smtp.url()).await?,
        own_pool: own_pool_limit(&smtp.url()).await?,
    };
    let email_concurrency =
        std::env::var("HERALD_BENCH_EMAIL_CONCURRENCY").unwrap_or_else(|_| "32".to_owned());
    let mut fanout = setup.start("herald-fanout", &[]).await;
    fanout.wait_healthy().await;
    let mut email = setup
        .start(
            "herald-email",
            &[
                ("SMTP_URL", &smtp.url()),
                ("HERALD_WORKER_CONCURRENCY", &email_concurrency),
                ("RUST_LOG", "warn,herald_workers::email=info"),
            ],
        )
        .await;
    email.wait_healthy().await;
    let topic = Uuid::now_v7();
    sqlx::query("INSERT INTO topics (tenant_id, id, name) VALUES ($1, $2, 'mail')")
        .bind(setup.tenant)
        .bind(topic)
        .execute(&setup.pool)
        .await?;
    sqlx::query(
        "WITH t AS (INSERT INTO topic_subscriptions (tenant_id, topic_id, user_id) \
             SELECT $1, $2, 'user-' || lpad(g::text, 6, '0') FROM generate_series(1, $3) g RETURNING user_id) \
         UPDATE recipients SET email = user_id || '@example.com' WHERE tenant_id = $1 AND user_id IN (SELECT user_id FROM t)",
    )
    .bind(setup.tenant)
    .bind(topic)
    .bind(EMAILS)
    .execute(&setup.pool)
    .await?;
    let started = Instant::now();
    reqwest::Client::new()
        .post(format!("{}/tenant/{}/v1/Broadcasts", api.base_url(), setup.tenant))
        .header("X-API-Key", &setup.api_key)
        .json(&json!({ "topicIds": [topic], "email": true, "subject": "Mail", "message": "Benchmark email.", "type": "SystemAnnouncement" }))
        .send()
        .await?;
    loop {
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'Sent'")
            .fetch_one(&setup.pool)
            .await?;
        if sent >= EMAILS {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "only {sent} emails sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = EMAILS as f64 / started.elapsed().as_secs_f64();
    if std::env::var_os("HERALD_BENCH_VERBOSE").is_some() {
        println!(
            "{}",
            email.logs().lines().take(40).collect::<Vec<_>>().join("\n")
        );
    }
    Ok((rate, limit))
}

fn bench_message(i: i64) -> anyhow::Result<lettre::Message> {
    Ok(lettre::Message::builder()
        .from("Herald <noreply@herald.localhost>".parse()?)
        .to(format!("user-{i}@example.com").parse()?)
        .subject("Mail")
        .body("Benchmark email.".to_owned())?)
}

async fn own_pool_limit(url: &str) -> anyhow::Result<f64> {
    use herald_workers::smtp::{Endpoint, SmtpPool};
    let pool = SmtpPool::new(Endpoint::from_url(url)?, 32);
    let started = Instant::now();
    let sends = futures::stream::iter(0..EMAILS)
        .map(|i| {
            let pool = &pool;
            async move {
                let message = bench_message(i)?;
                let awaiting = pool
                    .open_data(message.envelope(), true)
                    .await
                    .map_err(|failure| anyhow::anyhow!(failure.message))?;
                awaiting
                    .send(&message.formatted())
                    .await
                    .map_err(|failure| anyhow::anyhow!(failure.message))
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for result in sends {
        result?;
    }
    Ok(EMAILS as f64 / started.elapsed().as_secs_f64())
}

async fn smtp_limit(url: &str) -> anyhow::Result<f64> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build();
    let started = Instant::now();
    let sends = futures::stream::iter(0..EMAILS)
        .map(|i| {
            let transport = transport.clone();
            async move {
                transport.send(bench_message(i)?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for result in sends {
        result?;
    }
    Ok(EMAILS as f64 / started.elapsed().as_secs_f64())
}
