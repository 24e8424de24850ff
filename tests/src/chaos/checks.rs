//! The end of a run: wait for the accepted work to settle, then compare what was accepted with
//! what PostgreSQL, the SMTP sink and the hub clients show, and print one table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::backend::Counters;
use super::cluster::RssKb;
use super::faults::AbuseResults;
use super::hub_clients::Received;
use super::workload::{Ledger, Mailbox};
use super::{Config, RSS_FACTOR, RSS_SLACK_KB};

/// Polls until no accepted work is left undone (twice in a row) or `until` passes.
pub async fn wait_settled(pool: &PgPool, tenant_id: Uuid, until: Instant) -> bool {
    let mut quiet_polls = 0;
    while Instant::now() < until {
        let open: Result<i64, _> = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM notifications WHERE tenant_id = $1 AND (status = 'Pending' \
                     OR (status = 'Scheduled' AND scheduled_for < now()))) \
                  + (SELECT count(*) FROM broadcasts WHERE tenant_id = $1 \
                     AND status NOT IN ('Completed', 'Cancelled', 'Failed')) \
                  + (SELECT count(*) FROM deliveries WHERE tenant_id = $1 \
                     AND state IN ('Pending', 'Sending', 'Retrying') AND data_started_at IS NULL)",
        )
        .bind(tenant_id)
        .fetch_one(pool)
        .await;
        quiet_polls = if matches!(open, Ok(0)) {
            quiet_polls + 1
        } else {
            0
        };
        if quiet_polls >= 2 {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    false
}

pub struct Inputs<'a> {
    pub config: &'a Config,
    pub tenant_id: Uuid,
    pub ledger: &'a Ledger,
    pub counters: &'a Counters,
    pub smtp_received: Vec<Value>,
    pub smtp_attempts: Vec<Value>,
    pub received: &'a BTreeMap<String, Received>,
    pub hub_users_started: u64,
    pub abuse: &'a AbuseResults,
    pub rss: BTreeMap<&'static str, RssKb>,
    pub died_unasked: BTreeMap<&'static str, u32>,
    pub fault_log: Vec<(f64, String)>,
    pub settled: bool,
    pub wall: Duration,
}

/// One row of the table.
pub struct Check {
    pub name: String,
    pub expected: String,
    pub found: String,
    pub pass: bool,
}

pub struct Report {
    pub checks: Vec<Check>,
    pub table: String,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.pass)
    }

    /// One line per missed target: which check, expected and found.
    pub fn failures(&self) -> String {
        self.checks
            .iter()
            .filter(|check| !check.pass)
            .map(|c| {
                format!(
                    "FAILED {}: expected {}, found {}",
                    c.name, c.expected, c.found
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn check(
    checks: &mut Vec<Check>,
    name: &str,
    expected: impl ToString,
    found: impl ToString,
    pass: bool,
) {
    checks.push(Check {
        name: name.to_owned(),
        expected: expected.to_string(),
        found: found.to_string(),
        pass,
    });
}

pub async fn evaluate(pool: &PgPool, inputs: Inputs<'_>) -> Report {
    let mut checks = Vec::new();
    let ledger = inputs.ledger;
    let tenant = inputs.tenant_id;
    let get = Counters::get;
    let counters = inputs.counters;

    // Requests.
    let accepted_creates =
        ledger.notifications.len() + ledger.broadcasts.len() + ledger.chat_messages.len();
    check(
        &mut checks,
        "requests accepted (2xx) — notifications / broadcasts / chat messages",
        "-",
        format!(
            "{accepted_creates} ({} / {} / {}); {} attempts, {} unanswered attempts retried, {} chat messages unanswered",
            ledger.notifications.len(),
            ledger.broadcasts.len(),
            ledger.chat_messages.len(),
            get(&counters.attempts),
            get(&counters.unanswered),
            ledger.chat_unanswered
        ),
        accepted_creates > 0,
    );
    let server_errors = get(&counters.server_errors);
    let h2c_5xx = inputs
        .abuse
        .h2c_statuses
        .iter()
        .flatten()
        .filter(|s| **s >= 500)
        .count() as u64;
    check(
        &mut checks,
        "5xx answers",
        0,
        server_errors + h2c_5xx,
        server_errors + h2c_5xx == 0,
    );
    check(
        &mut checks,
        "valid requests refused (4xx)",
        0,
        get(&counters.refused),
        get(&counters.refused) == 0,
    );
    // A chat message has no idempotency key, so an unanswered one is not retried (and not
    // expected anywhere); only requests retried for 90 s without an answer count here.
    let abandoned = ledger.abandoned;
    check(
        &mut checks,
        "requests never answered (retried 90 s)",
        0,
        abandoned,
        abandoned == 0,
    );

    let open = open_work(pool, tenant).await;
    let verdicts = sends_awaiting_verdict(pool, tenant).await;
    check(
        &mut checks,
        "accepted work settled in the quiet period",
        "nothing open",
        format!(
            "{}; {verdicts} sends at their at-most-once verdict",
            if inputs.settled {
                "nothing open"
            } else {
                &open
            }
        ),
        inputs.settled,
    );

    // Inbox rows.
    let ids: Vec<Uuid> = ledger.notifications.iter().map(|n| n.id).collect();
    let delivered: HashSet<Uuid> = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE tenant_id = $1 AND id = ANY($2) \
         AND status NOT IN ('Pending', 'Scheduled', 'Cancelled')",
    )
    .bind(tenant)
    .bind(&ids)
    .fetch_all(pool)
    .await
    .expect("delivered notifications")
    .into_iter()
    .collect();
    let duplicate_notifications: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(n - 1), 0)::bigint FROM (SELECT count(*) AS n FROM notifications \
         WHERE tenant_id = $1 AND broadcast_id IS NULL GROUP BY metadata->>'chaosKey') per_key",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .expect("duplicates");
    let mut broadcast_expected = 0usize;
    let mut broadcast_found = 0usize;
    let mut broadcast_duplicates = 0i64;
    let mut broadcasts_unfinished = Vec::new();
    for broadcast in &ledger.broadcasts {
        let (rows, users): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT user_id) FROM notifications \
             WHERE tenant_id = $1 AND broadcast_id = $2",
        )
        .bind(tenant)
        .bind(broadcast.id)
        .fetch_one(pool)
        .await
        .expect("broadcast rows");
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM broadcasts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(broadcast.id)
                .fetch_optional(pool)
                .await
                .expect("broadcast");
        broadcast_expected += broadcast.audience.len();
        broadcast_found += (users as usize).min(broadcast.audience.len());
        broadcast_duplicates += rows - users;
        if status.as_deref() != Some("Completed") {
            broadcasts_unfinished.push(format!(
                "{} {status:?} {users}/{}",
                broadcast.id,
                broadcast.audience.len()
            ));
        }
    }
    let inbox_expected = ids.len() + broadcast_expected;
    let inbox_found = delivered.len() + broadcast_found;
    check(
        &mut checks,
        "inbox rows (notifications + broadcast rows)",
        format!("{inbox_expected} ({} + {broadcast_expected})", ids.len()),
        format!("{inbox_found} ({} + {broadcast_found})", delivered.len()),
        inbox_found == inbox_expected,
    );
    let duplicates = duplicate_notifications + broadcast_duplicates;
    check(
        &mut checks,
        "inbox duplicates",
        0,
        duplicates,
        duplicates == 0,
    );
    check(
        &mut checks,
        "broadcasts completed",
        ledger.broadcasts.len(),
        format!(
            "{}{}",
            ledger.broadcasts.len() - broadcasts_unfinished.len(),
            if broadcasts_unfinished.is_empty() {
                String::new()
            } else {
                format!(" (not: {})", broadcasts_unfinished.join("; "))
            }
        ),
        broadcasts_unfinished.is_empty(),
    );
    let message_ids: Vec<Uuid> = ledger.chat_messages.iter().map(|m| m.1).collect();
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chat_messages WHERE tenant_id = $1 AND id = ANY($2)",
    )
    .bind(tenant)
    .bind(&message_ids)
    .fetch_one(pool)
    .await
    .expect("chat messages");
    check(
        &mut checks,
        "chat messages stored",
        message_ids.len(),
        stored,
        stored as usize == message_ids.len(),
    );

    // Emails.
    let refused_for_good: HashSet<String> = inputs
        .smtp_attempts
        .iter()
        .filter(|a| a["outcome"] == "550")
        .filter_map(|a| a["subject"].as_str().map(str::to_owned))
        .collect();
    let mut sent_per_subject: HashMap<String, usize> = HashMap::new();
    for message in &inputs.smtp_received {
        if let Some(subject) = message["subject"].as_str() {
            *sent_per_subject.entry(subject.to_owned()).or_default() += 1;
        }
    }
    let emailed: Vec<_> = ledger
        .notifications
        .iter()
        .filter(|n| n.mailbox.is_some())
        .collect();
    let expected_sent: Vec<_> = emailed
        .iter()
        .filter(|n| n.mailbox != Some(Mailbox::Reject) && !refused_for_good.contains(&n.subject))
        .collect();
    let sent = expected_sent
        .iter()
        .filter(|n| sent_per_subject.contains_key(&n.subject))
        .count();
    let email_duplicates: usize = sent_per_subject.values().map(|n| n - 1).sum();
    let wrongly_sent = emailed
        .iter()
        .filter(|n| n.mailbox == Some(Mailbox::Reject) && sent_per_subject.contains_key(&n.subject))
        .count();
    check(
        &mut checks,
        "emails sent (sink) vs expected",
        format!(
            "{} (of {} emailed; {} refused with 5xx)",
            expected_sent.len(),
            emailed.len(),
            emailed.len() - expected_sent.len()
        ),
        format!(
            "{sent}{}",
            if wrongly_sent > 0 {
                format!(" (+{wrongly_sent} to rejecting mailboxes)")
            } else {
                String::new()
            }
        ),
        sent == expected_sent.len() && wrongly_sent == 0,
    );
    check(
        &mut checks,
        "email duplicates (sink)",
        0,
        email_duplicates,
        email_duplicates == 0,
    );

    // Hub events.
    let hub_users: HashSet<&str> = inputs.received.keys().map(String::as_str).collect();
    // Per user: each expected event id and what it is (for the breakdown of what is missing).
    let mut expected: HashMap<&str, HashMap<String, &'static str>> = HashMap::new();
    for notification in &ledger.notifications {
        if hub_users.contains(notification.user_id.as_str()) {
            expected
                .entry(&notification.user_id)
                .or_default()
                .insert(notification.id.to_string(), "notification");
        }
    }
    let broadcast_ids: Vec<Uuid> = ledger.broadcasts.iter().map(|b| b.id).collect();
    let users: Vec<String> = hub_users.iter().map(|u| u.to_string()).collect();
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT user_id, id FROM notifications WHERE tenant_id = $1 AND broadcast_id = ANY($2) AND user_id = ANY($3)",
    )
    .bind(tenant)
    .bind(&broadcast_ids)
    .bind(&users)
    .fetch_all(pool)
    .await
    .expect("broadcast rows of hub users");
    for (user, id) in &rows {
        if let Some(user) = hub_users.get(user.as_str()) {
            expected
                .entry(user)
                .or_default()
                .insert(id.to_string(), "broadcast");
        }
    }
    for (chat, members) in &ledger.chats {
        for (message_chat, message) in &ledger.chat_messages {
            if message_chat == chat {
                for member in members {
                    if let Some(user) = hub_users.get(member.as_str()) {
                        expected
                            .entry(user)
                            .or_default()
                            .insert(message.to_string(), "chat");
                    }
                }
            }
        }
    }
    let expected_events: usize = expected.values().map(HashMap::len).sum();
    let mut received_events = 0usize;
    let mut users_missing = 0usize;
    let mut missing: BTreeMap<&str, (usize, HashSet<&str>)> = BTreeMap::new();
    for (user, ids) in &expected {
        let got = &inputs.received[*user].ids;
        let mut have = 0;
        for (id, what) in ids {
            if got.contains(id) {
                have += 1;
            } else {
                let entry = missing.entry(what).or_default();
                entry.0 += 1;
                entry.1.insert(id);
            }
        }
        received_events += have;
        if have < ids.len() {
            users_missing += 1;
        }
    }
    let missing: Vec<String> = missing
        .iter()
        .map(|(what, (n, ids))| format!("{n} {what} ({} distinct)", ids.len()))
        .collect();
    check(
        &mut checks,
        "hub events received after catch-up (README clients)",
        format!(
            "{expected_events} ({} clients started)",
            inputs.hub_users_started
        ),
        format!(
            "{received_events} ({users_missing} clients missing: {})",
            missing.join(", ")
        ),
        received_events == expected_events
            && inputs.hub_users_started as usize == inputs.config.hub_clients,
    );
    let closed = inputs.received.values().filter(|r| r.closed > 0).count();
    let reconnects: u64 = inputs.received.values().map(|r| r.reconnected).sum();
    let reconnecting: u64 = inputs.received.values().map(|r| r.reconnecting).sum();
    let repeated: u64 = inputs
        .received
        .values()
        .map(|r| r.events.saturating_sub(r.ids.len() as u64))
        .sum();
    check(
        &mut checks,
        "hub clients given up (withAutomaticReconnect closed)",
        0,
        format!(
            "{closed} ({reconnecting} reconnecting, {reconnects} reconnected; {repeated} repeats deduped)"
        ),
        closed == 0,
    );

    // Abuse.
    let h2c = &inputs.abuse.h2c_statuses;
    // 413 before the body is read: a 400 means the whole body was read (and parsed) first.
    let h2c_refused = h2c.iter().filter(|s| **s == Some(413)).count();
    check(
        &mut checks,
        "h2c oversized bodies refused with 413",
        h2c.len(),
        format!("{h2c_refused} {h2c:?}"),
        h2c_refused == h2c.len(),
    );
    let (opened, closed_slow) = inputs
        .abuse
        .slowloris
        .iter()
        .fold((0, 0), |(o, c), (opened, closed)| (o + opened, c + closed));
    check(
        &mut checks,
        "slowloris connections closed by the server within 40 s",
        opened,
        closed_slow,
        closed_slow == opened,
    );
    let died: u32 = inputs.died_unasked.values().sum();
    check(
        &mut checks,
        "processes that died without being killed",
        0,
        format!("{died} {:?}", inputs.died_unasked),
        died == 0,
    );

    // Memory.
    let mut memory_rows = String::new();
    for (kind, rss) in &inputs.rss {
        let bound = (rss.warm as f64 * RSS_FACTOR) as u64 + RSS_SLACK_KB;
        let flat = rss.last <= bound;
        let _ = writeln!(
            memory_rows,
            "  {kind:<10} post-warm-up {:>7.1} MiB   peak {:>7.1} MiB   final {:>7.1} MiB   bound {:>7.1} MiB   {}",
            mib(rss.warm),
            mib(rss.peak),
            mib(rss.last),
            mib(bound),
            if flat { "flat" } else { "GREW" }
        );
        check(
            &mut checks,
            &format!("memory flat: {kind} final RSS"),
            format!("<= {:.1} MiB", mib(bound)),
            format!("{:.1} MiB (peak {:.1})", mib(rss.last), mib(rss.peak)),
            flat,
        );
    }

    let table = render(&inputs, &checks, &memory_rows, counters);
    Report { checks, table }
}

/// What is still open: notifications by status, broadcasts, emails by state.
async fn open_work(pool: &PgPool, tenant: Uuid) -> String {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'notifications ' || status, count(*) FROM notifications WHERE tenant_id = $1            AND (status = 'Pending' OR (status = 'Scheduled' AND scheduled_for < now())) GROUP BY status          UNION ALL SELECT 'broadcasts ' || status, count(*) FROM broadcasts WHERE tenant_id = $1            AND status NOT IN ('Completed', 'Cancelled', 'Failed') GROUP BY status          UNION ALL SELECT 'emails ' || state, count(*) FROM deliveries WHERE tenant_id = $1            AND state IN ('Pending', 'Sending', 'Retrying') AND data_started_at IS NULL GROUP BY state",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    rows.iter()
        .map(|(what, n)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sends whose worker was killed between handing the server the body and recording its
/// answer: not open work (nothing will send them again; the sweep fails them after 10 minutes,
/// at most once). Whether each arrived is the sink's to say, in the emails check.
async fn sends_awaiting_verdict(pool: &PgPool, tenant: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE tenant_id = $1 AND state = 'Sending' \
         AND data_started_at IS NOT NULL",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap_or_default()
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn render(inputs: &Inputs<'_>, checks: &[Check], memory_rows: &str, counters: &Counters) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nHerald fault & abuse suite — {} form, seed {}, {:.0} s wall",
        inputs.config.form,
        inputs.config.seed,
        inputs.wall.as_secs_f64()
    );
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
    let _ = writeln!(
        out,
        "| {:<width$} | {:<24} | {:<40} | result |",
        "check", "expected", "found"
    );
    let _ = writeln!(
        out,
        "|{}|{}|{}|--------|",
        "-".repeat(width + 2),
        "-".repeat(26),
        "-".repeat(42)
    );
    for c in checks {
        let _ = writeln!(
            out,
            "| {:<width$} | {:<24} | {:<40} | {} |",
            c.name,
            c.expected,
            c.found,
            if c.pass { "  ok  " } else { "FAILED" }
        );
    }
    let _ = writeln!(
        out,
        "\nPeak RSS per process kind (largest copy; bound = {RSS_FACTOR} × post-warm-up + {} MiB):",
        RSS_SLACK_KB / 1024
    );
    out.push_str(memory_rows);
    let samples = counters.samples.lock().expect("samples");
    if !samples.is_empty() {
        let _ = writeln!(out, "\nFirst refused / failed answers:");
        for sample in samples.iter() {
            let _ = writeln!(out, "  {sample}");
        }
    }
    let _ = writeln!(out, "\nFault log:");
    for (at, line) in &inputs.fault_log {
        let _ = writeln!(out, "  {at:7.1}s  {line}");
    }
    out
}
