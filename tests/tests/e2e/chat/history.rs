//! A chat's message history over REST against the real `herald-api` and PostgreSQL: paging
//! backwards and forwards, time cursors, paging while messages arrive, and retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_tests::TestApp;
use herald_tests::chat::{Actor, assert_field_error, ids_of, of, send_many, str_of, uuid_v7_at};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn history_pages_backwards_newest_first_until_the_oldest() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let sent = send_many(&app, &chat, "alice", "m", 25).await;
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();

    let mut pages = Vec::new();
    let mut query = "pageSize=10".to_owned();
    loop {
        let page = app.chat_history(&of("bob"), &chat, &query).await;
        let ids = ids_of(&page);
        let more = page["hasMore"].as_bool().expect("hasMore");
        if more {
            assert_eq!(
                page["nextBefore"].as_str(),
                ids.last().map(String::as_str),
                "{page}"
            );
            query = format!(
                "pageSize=10&before={}",
                page["nextBefore"].as_str().unwrap()
            );
        } else {
            assert_eq!(page["nextBefore"], Value::Null, "{page}");
        }
        pages.push(ids);
        if !more {
            break;
        }
        assert!(pages.len() < 5, "paging does not end");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    assert_eq!(
        pages.concat(),
        newest_first,
        "each message once, newest first"
    );

    let page = app.chat_history(&of("bob"), &chat, "").await;
    assert_eq!(ids_of(&page), newest_first, "the default page size is 50");
    assert_eq!(page["hasMore"], false);
    let first = app.chat_history(&of("bob"), &chat, "pageSize=1").await;
    assert_eq!(first["data"][0]["message"], "m 25");
    assert_eq!(first["data"][0]["chatId"], chat.as_str());
    assert_eq!(first["data"][0]["contentType"], "Text");
    for bad in [
        "pageSize=0",
        "pageSize=101",
        "before=yesterday",
        "after=not-an-id",
    ] {
        let (status, problem) = app
            .chat_call(
                &of("bob"),
                Method::GET,
                &format!("Chat/{chat}/messages?{bad}"),
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
}

#[tokio::test]
async fn history_pages_forwards_with_after() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let sent = send_many(&app, &chat, "alice", "m", 25).await;
    let newest_first =
        |from: usize, to: usize| -> Vec<String> { sent[from..to].iter().rev().cloned().collect() };

    // The 10 right after m5 (index 4), still newest first.
    let page = app
        .chat_history(&of("bob"), &chat, &format!("after={}&pageSize=10", sent[4]))
        .await;
    assert_eq!(ids_of(&page), newest_first(5, 15));
    assert_eq!(page["hasMore"], true);
    assert_eq!(page["nextAfter"], sent[14].as_str());
    let page = app
        .chat_history(
            &of("bob"),
            &chat,
            &format!("after={}&pageSize=10", sent[14]),
        )
        .await;
    assert_eq!(ids_of(&page), newest_first(15, 25));
    assert_eq!(page["hasMore"], false);
    assert_eq!(page["nextAfter"], Value::Null);
    let page = app
        .chat_history(&of("bob"), &chat, &format!("after={}", sent[24]))
        .await;
    assert_eq!(ids_of(&page), Vec::<String>::new());
    assert_eq!(page["hasMore"], false);
}

#[tokio::test]
async fn history_cursors_may_be_times() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let early = send_many(&app, &chat, "alice", "early", 3).await;
    let last_early = app.chat_history(&of("alice"), &chat, "pageSize=1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = send_many(&app, &chat, "alice", "late", 3).await;
    let first_late = app
        .chat_history(
            &of("alice"),
            &chat,
            &format!("after={}&pageSize=1", early[2]),
        )
        .await;
    let at =
        |page: &Value| -> DateTime<Utc> { str_of(&page["data"][0], "createdAt").parse().unwrap() };
    let (last_early, first_late) = (at(&last_early), at(&first_late));
    let between = last_early + (first_late - last_early) / 2;
    assert!(
        between > last_early && between < first_late,
        "{last_early} {first_late}"
    );
    let iso = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    let before = app
        .chat_history(&of("bob"), &chat, &format!("before={iso}"))
        .await;
    assert_eq!(
        ids_of(&before),
        early.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(before["hasMore"], false);
    let after = app
        .chat_history(&of("bob"), &chat, &format!("after={iso}"))
        .await;
    assert_eq!(
        ids_of(&after),
        late.iter().rev().cloned().collect::<Vec<_>>()
    );
    let after = app
        .chat_history(&of("bob"), &chat, &format!("after={iso}&pageSize=2"))
        .await;
    assert_eq!(ids_of(&after), [late[1].as_str(), late[0].as_str()]);
    assert_eq!(after["hasMore"], true);
    assert_eq!(after["nextAfter"], late[1].as_str());
}

#[tokio::test]
async fn paging_back_while_new_messages_arrive_sees_each_old_message_once() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let existing = send_many(&app, &chat, "alice", "old", 25).await;

    let mut seen = Vec::new();
    let mut arrived = Vec::new();
    let mut query = "pageSize=10".to_owned();
    let mut newest_seen = None;
    for round in 0.. {
        let page = app.chat_history(&of("bob"), &chat, &query).await;
        let ids = ids_of(&page);
        newest_seen = newest_seen.or_else(|| ids.first().cloned());
        seen.extend(ids);
        if page["hasMore"] == false {
            break;
        }
        assert!(round < 5, "paging does not end");
        // Others keep talking between page fetches.
        arrived.extend(send_many(&app, &chat, "alice", &format!("new {round}"), 4).await);
        query = format!(
            "pageSize=10&before={}",
            page["nextBefore"].as_str().unwrap()
        );
    }
    let expected: Vec<String> = existing.iter().rev().cloned().collect();
    assert_eq!(
        seen, expected,
        "exactly the messages of the first fetch, each once"
    );

    // Catching up forwards from the newest seen gets exactly the new ones.
    let mut newer = Vec::new();
    let mut after = newest_seen.unwrap();
    loop {
        let page = app
            .chat_history(&of("bob"), &chat, &format!("after={after}&pageSize=5"))
            .await;
        let mut ids = ids_of(&page);
        ids.reverse();
        newer.extend(ids);
        match page["nextAfter"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(arrived.len(), 8, "two rounds of new messages");
    assert_eq!(newer, arrived, "the new messages, each once, oldest first");
}

#[tokio::test]
async fn retention_deletes_only_messages_older_than_asked() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    let now = Utc::now();
    let mut old = Vec::new();
    for days in [400, 45, 31] {
        let at = now - chrono::Duration::days(days);
        old.push(
            app.insert_chat_message_at(&chat, "bob", &format!("{days} days ago"), at)
                .await,
        );
    }
    let recent = app
        .insert_chat_message_at(
            &chat,
            "bob",
            "29 days ago",
            now - chrono::Duration::days(29),
        )
        .await;
    let fresh = app.send_message(&chat, "alice", "today").await;
    let page = app.chat_history(&of("bob"), &chat, "").await;
    assert_eq!(ids_of(&page).len(), 5, "{page}");

    let path = format!("Chat/{chat}/messages?olderThanDays=30");
    let (status, _) = app.chat_call(&of("bob"), Method::DELETE, &path, None).await;
    assert_eq!(status, 403, "a plain member");
    let (status, _) = app
        .chat_call(
            &of("alice"),
            Method::POST,
            &format!("Chat/{chat}/members"),
            Some(json!({ "userIds": ["erin"], "role": "Admin" })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .chat_call(&of("erin"), Method::DELETE, &path, None)
        .await;
    assert_eq!(
        status, 403,
        "an admin: retention is the owner's or the tenant's"
    );
    for bad in ["-1", "36501", "soon"] {
        let (status, problem) = app
            .chat_call(
                &of("alice"),
                Method::DELETE,
                &format!("Chat/{chat}/messages?olderThanDays={bad}"),
                None,
            )
            .await;
        assert_field_error(status, &problem, "olderThanDays");
    }
    assert_eq!(
        ids_of(&app.chat_history(&of("bob"), &chat, "").await).len(),
        5
    );

    let (status, body) = app
        .chat_call(&of("alice"), Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "deleted": 3 }));
    let left = app.chat_history(&of("bob"), &chat, "").await;
    assert_eq!(
        ids_of(&left),
        [str_of(&fresh, "id").to_owned(), recent.to_string()]
    );
    let (_, body) = app
        .chat_call(&Actor::Tenant, Method::DELETE, &path, None)
        .await;
    assert_eq!(body, json!({ "deleted": 0 }), "nothing more is that old");
    let remaining: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE id = ANY($1)")
            .bind(&old)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(remaining, 0, "retention hard-deletes");

    let (status, body) = app
        .chat_call(
            &Actor::Tenant,
            Method::DELETE,
            &format!("Chat/{chat}/messages?olderThanDays=0"),
            None,
        )
        .await;
    assert_eq!((status, body), (200, json!({ "deleted": 2 })));
    assert_eq!(
        ids_of(&app.chat_history(&of("bob"), &chat, "").await),
        Vec::<String>::new()
    );
    assert_eq!(uuid_v7_at(now).get_version_num(), 7);
}
