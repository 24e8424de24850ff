//! Topics and their subscribers through HTTP against the real `herald-api` and PostgreSQL.

use std::collections::BTreeSet;

use herald_tests::{Tenant, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.backend_call(&app.tenant, method, path, body).await
}

fn users(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:05}")).collect()
}

async fn subscription_rows(app: &TestApp, topic_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM topic_subscriptions WHERE topic_id = $1::uuid")
        .bind(topic_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn subscriber_count(app: &TestApp, tenant: &Tenant, topic_id: &str) -> i64 {
    let (status, topic) = app
        .backend_call(tenant, Method::GET, &format!("Topics/{topic_id}"), None)
        .await;
    assert_eq!(status, 200, "{topic}");
    topic["subscriberCount"].as_i64().unwrap()
}

/// Every subscriber of a topic, page by page, following `nextAfter` to the end.
async fn subscriber_pages(app: &TestApp, topic_id: &str, page_size: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("Topics/{topic_id}/subscribers?pageSize={page_size}{after}");
        let (status, page) = call(app, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.iter().all(|s| s["subscribedAt"].is_string()));
        pages.push(
            data.iter()
                .map(|s| s["userId"].as_str().unwrap().to_owned())
                .collect(),
        );
        match page["nextAfter"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn a_topic_is_created_read_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let response = app
        .as_backend(&app.tenant, Method::POST, "Topics")
        .json(&json!({ "name": "  Product news ", "description": "Releases and changelogs" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created = herald_tests::test_app::json_body(response).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        location,
        format!("/tenant/{}/v1/Topics/{id}", app.tenant.id)
    );
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(
        created["name"], "Product news",
        "surrounding whitespace is removed"
    );
    assert_eq!(created["description"], "Releases and changelogs");
    assert_eq!(created["subscriberCount"], 0);
    assert!(created["createdAt"].is_string());

    let (status, fetched) = call(&app, Method::GET, &format!("Topics/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);
    let (_, listed) = call(&app, Method::GET, "Topics", None).await;
    assert_eq!(listed["data"], json!([created]));
    assert_eq!(listed["nextAfter"], Value::Null);

    let (status, body) = call(&app, Method::DELETE, &format!("Topics/{id}"), None).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(
        call(&app, Method::GET, &format!("Topics/{id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("Topics/{id}"), None)
            .await
            .0,
        404
    );
    let (_, listed) = call(&app, Method::GET, "Topics", None).await;
    assert_eq!(listed["data"], json!([]));
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        call(&app, Method::GET, &format!("Topics/{unknown}"), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_duplicate_topic_name_is_a_conflict_within_a_tenant_only() {
    let app = TestApp::spawn().await;
    app.create_topic(&app.tenant, "news").await;
    let (status, problem) = call(
        &app,
        Method::POST,
        "Topics",
        Some(json!({ "name": "news" })),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["status"], 409);
    let (status, _) = call(
        &app,
        Method::POST,
        "Topics",
        Some(json!({ "name": " news " })),
    )
    .await;
    assert_eq!(status, 409, "the trimmed name is the name");
    let (_, listed) = call(&app, Method::GET, "Topics", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    let other = app.create_tenant("globex").await;
    app.create_topic(&other, "news").await;
}

#[tokio::test]
async fn every_invalid_topic_field_is_a_400_naming_it() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({}), "name"),
        (json!({ "name": "   " }), "name"),
        (json!({ "name": "n".repeat(101) }), "name"),
        (json!({ "name": 7 }), "name"),
        (
            json!({ "name": "ok", "description": "d".repeat(1_001) }),
            "description",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = call(&app, Method::POST, "Topics", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(problem["errors"][field].is_array(), "{body}: {problem}");
    }
    let longest = json!({ "name": "n".repeat(100), "description": "d".repeat(1_000) });
    assert_eq!(
        call(&app, Method::POST, "Topics", Some(longest)).await.0,
        201
    );

    for (query, field) in [
        ("pageSize=0", "pageSize"),
        ("pageSize=101", "pageSize"),
        ("after=not-a-uuid", "after"),
    ] {
        let (status, problem) = call(&app, Method::GET, &format!("Topics?{query}"), None).await;
        assert_eq!(status, 400, "{query}");
        assert!(problem["errors"][field].is_array(), "{query}: {problem}");
    }
    let (status, problem) = call(&app, Method::GET, "Topics/not-a-uuid", None).await;
    assert_eq!(status, 400);
    assert!(problem["errors"]["topicId"].is_array(), "{problem}");
}

#[tokio::test]
async fn topics_page_oldest_first_with_every_topic_exactly_once() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let topic = app.create_topic(&app.tenant, &format!("topic {i}")).await;
        created.push(topic["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = call(
            &app,
            Method::GET,
            &format!("Topics?pageSize=3{after}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let data = page["data"].as_array().unwrap();
        sizes.push(data.len());
        seen.extend(data.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page["nextAfter"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen, created, "creation order, each once");
}

#[tokio::test]
async fn ten_thousand_users_subscribe_in_one_request_and_repeating_it_adds_none() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "everyone").await;
    let topic_id = topic["id"].as_str().unwrap();
    let ten_thousand = users("user", 10_000);

    let first = app.subscribe(&app.tenant, topic_id, &ten_thousand).await;
    assert_eq!(first, json!({ "added": 10_000, "alreadySubscribed": 0 }));
    let again = app.subscribe(&app.tenant, topic_id, &ten_thousand).await;
    assert_eq!(again, json!({ "added": 0, "alreadySubscribed": 10_000 }));
    assert_eq!(subscription_rows(&app, topic_id).await, 10_000);
    assert_eq!(subscriber_count(&app, &app.tenant, topic_id).await, 10_000);

    let too_many = users("more", 10_001);
    let (status, problem) = call(
        &app,
        Method::PUT,
        &format!("Topics/{topic_id}/subscribers"),
        Some(json!({ "userIds": too_many })),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["errors"]["userIds"].is_array(), "{problem}");
    assert_eq!(
        subscription_rows(&app, topic_id).await,
        10_000,
        "none of them added"
    );
}

#[tokio::test]
async fn overlapping_and_repeated_ids_are_counted_once() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    app.subscribe(&app.tenant, topic_id, &ids(&["alice", "bob"]))
        .await;
    let overlap = app
        .subscribe(
            &app.tenant,
            topic_id,
            &ids(&["bob", "carol", "carol", "dave"]),
        )
        .await;
    assert_eq!(overlap, json!({ "added": 2, "alreadySubscribed": 1 }));
    assert_eq!(subscriber_count(&app, &app.tenant, topic_id).await, 4);
}

#[tokio::test]
async fn bad_user_ids_are_reported_by_position_and_subscribe_no_one() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    let path = format!("Topics/{topic_id}/subscribers");
    for method in [Method::PUT, Method::DELETE] {
        let (status, problem) = call(
            &app,
            method.clone(),
            &path,
            Some(json!({ "userIds": ["alice", "bad id", "u".repeat(129), "bob"] })),
        )
        .await;
        assert_eq!(status, 400, "{method}: {problem}");
        let fields: Vec<&String> = problem["errors"].as_object().unwrap().keys().collect();
        assert_eq!(fields, ["userIds[1]", "userIds[2]"], "{method}");

        for body in [json!({ "userIds": [] }), json!({})] {
            let (status, problem) = call(&app, method.clone(), &path, Some(body.clone())).await;
            assert_eq!(status, 400, "{method} {body}");
            assert!(problem["errors"]["userIds"].is_array(), "{problem}");
        }
        let (status, problem) = call(
            &app,
            method.clone(),
            &path,
            Some(json!({ "userIds": ["a", 5] })),
        )
        .await;
        assert_eq!(status, 400);
        assert!(problem["errors"]["userIds[1]"].is_array(), "{problem}");
    }
    assert_eq!(subscription_rows(&app, topic_id).await, 0);
}

#[tokio::test]
async fn unsubscribing_counts_only_users_who_were_subscribed() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    let path = format!("Topics/{topic_id}/subscribers");
    app.subscribe(&app.tenant, topic_id, &users("user", 5))
        .await;

    let (status, removed) = call(
        &app,
        Method::DELETE,
        &path,
        Some(json!({ "userIds": ["user-00001", "user-00003", "user-00003", "stranger"] })),
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed, json!({ "removed": 2 }));
    assert_eq!(subscriber_count(&app, &app.tenant, topic_id).await, 3);
    let remaining: Vec<String> = subscriber_pages(&app, topic_id, 100).await.concat();
    assert_eq!(remaining, ["user-00000", "user-00002", "user-00004"]);

    let (_, again) = call(
        &app,
        Method::DELETE,
        &path,
        Some(json!({ "userIds": ["user-00001"] })),
    )
    .await;
    assert_eq!(again, json!({ "removed": 0 }));
}

#[tokio::test]
async fn subscriber_pages_return_every_subscriber_exactly_once() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    let all = users("user", 250);
    app.subscribe(&app.tenant, topic_id, &all).await;
    // A subscriber of another topic must not show up.
    let other = app.create_topic(&app.tenant, "other").await;
    app.subscribe(&app.tenant, other["id"].as_str().unwrap(), &["zed".into()])
        .await;

    let pages = subscriber_pages(&app, topic_id, 100).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let seen: Vec<String> = pages.concat();
    assert_eq!(seen, all, "user id order, each exactly once");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 250);

    let (_, default_page) = call(
        &app,
        Method::GET,
        &format!("Topics/{topic_id}/subscribers"),
        None,
    )
    .await;
    assert_eq!(default_page["data"].as_array().unwrap().len(), 100);
    assert_eq!(default_page["nextAfter"], "user-00099");

    for query in ["pageSize=0", "pageSize=1001", "after=bad%20id"] {
        let path = format!("Topics/{topic_id}/subscribers?{query}");
        assert_eq!(call(&app, Method::GET, &path, None).await.0, 400, "{query}");
    }
}

#[tokio::test]
async fn deleting_a_topic_removes_its_subscriptions() {
    let app = TestApp::spawn().await;
    let doomed = app.create_topic(&app.tenant, "doomed").await;
    let kept = app.create_topic(&app.tenant, "kept").await;
    let (doomed_id, kept_id) = (doomed["id"].as_str().unwrap(), kept["id"].as_str().unwrap());
    app.subscribe(&app.tenant, doomed_id, &users("user", 300))
        .await;
    app.subscribe(&app.tenant, kept_id, &users("user", 10))
        .await;
    assert_eq!(subscription_rows(&app, doomed_id).await, 300);

    let (status, _) = call(&app, Method::DELETE, &format!("Topics/{doomed_id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(subscription_rows(&app, doomed_id).await, 0);
    assert_eq!(subscription_rows(&app, kept_id).await, 10);
    assert_eq!(subscriber_count(&app, &app.tenant, kept_id).await, 10);
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("Topics/{doomed_id}/subscribers"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_change_this_tenants_topics() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    app.subscribe(&app.tenant, topic_id, &["alice".into()])
        .await;
    let other = app.create_tenant("globex").await;

    let (status, page) = app.backend_call(&other, Method::GET, "Topics", None).await;
    assert_eq!((status, page["data"].clone()), (200, json!([])));
    let body = || Some(json!({ "userIds": ["mallory"] }));
    for (method, path, body) in [
        (Method::GET, format!("Topics/{topic_id}"), None),
        (Method::DELETE, format!("Topics/{topic_id}"), None),
        (
            Method::PUT,
            format!("Topics/{topic_id}/subscribers"),
            body(),
        ),
        (
            Method::DELETE,
            format!("Topics/{topic_id}/subscribers"),
            body(),
        ),
        (Method::GET, format!("Topics/{topic_id}/subscribers"), None),
    ] {
        let (status, problem) = app.backend_call(&other, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {problem}");
    }

    // Its key on this tenant's URL is refused outright.
    let response = app
        .client
        .put(app.tenant_url(&app.tenant, &format!("Topics/{topic_id}/subscribers")))
        .header("X-API-Key", &other.api_key)
        .json(&json!({ "userIds": ["mallory"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let subscribers = subscriber_pages(&app, topic_id, 10).await.concat();
    assert_eq!(subscribers, ["alice"], "nothing changed");
    assert_eq!(subscriber_count(&app, &app.tenant, topic_id).await, 1);
}

#[tokio::test]
async fn user_tokens_are_refused_on_topic_routes() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    let token = app.token_for(&app.tenant, "alice").await;
    let subscribers = format!("Topics/{topic_id}/subscribers");
    let one = format!("Topics/{topic_id}");
    for (method, path) in [
        (Method::POST, "Topics"),
        (Method::GET, "Topics"),
        (Method::GET, one.as_str()),
        (Method::DELETE, one.as_str()),
        (Method::PUT, subscribers.as_str()),
        (Method::DELETE, subscribers.as_str()),
        (Method::GET, subscribers.as_str()),
    ] {
        let response = app
            .as_user(&app.tenant, &token, method.clone(), path)
            .json(&json!({ "name": "x", "userIds": ["alice"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    assert_eq!(subscription_rows(&app, topic_id).await, 0);
}

#[tokio::test]
async fn a_subscription_needs_no_recipient_profile_and_an_unknown_topic_is_404() {
    let app = TestApp::spawn().await;
    let topic = app.create_topic(&app.tenant, "news").await;
    let topic_id = topic["id"].as_str().unwrap();
    let added = app
        .subscribe(&app.tenant, topic_id, &["no-profile".into()])
        .await;
    assert_eq!(added["added"], 1);
    let (status, _) = call(&app, Method::GET, "Users/no-profile", None).await;
    assert_eq!(status, 404, "subscribing created no profile");

    let unknown = uuid::Uuid::now_v7();
    let (status, problem) = call(
        &app,
        Method::PUT,
        &format!("Topics/{unknown}/subscribers"),
        Some(json!({ "userIds": ["alice"] })),
    )
    .await;
    assert_eq!(status, 404, "{problem}");
}
