//! A chat's members and my chat list over REST against the real `herald-api` and PostgreSQL:
//! listing by activity, managing and paging members, leaving and deleting a chat.

use herald_tests::TestApp;
use herald_tests::chat::{Actor, assert_field_error, how_many, ids_of, of, str_of, users_named};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn my_chats_are_listed_by_latest_activity_with_last_message_and_unread_count() {
    let app = TestApp::spawn().await;
    let one = app.create_group("alice", &["bob"]).await;
    let two = app.create_group("alice", &["bob"]).await;
    let three = app.create_group("alice", &["bob"]).await;
    app.send_message(&one, "alice", "first").await;
    app.send_message(&three, "alice", "third").await;
    app.send_message(&two, "alice", "second").await;
    app.send_message(&two, "alice", "second again").await;
    let quiet = app.create_group("alice", &["bob"]).await;

    let (status, page) = app.chat_call(&of("bob"), Method::GET, "Chat", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["totalCount"], 4);
    let listed: Vec<(&str, Value, Value)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                str_of(c, "id"),
                c["lastMessage"]["message"].clone(),
                c["unreadCount"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (quiet.as_str(), Value::Null, json!(0)),
            (two.as_str(), json!("second again"), json!(2)),
            (three.as_str(), json!("third"), json!(1)),
            (one.as_str(), json!("first"), json!(1)),
        ]
    );
    let data = page["data"].as_array().unwrap();
    assert_eq!(data[1]["lastMessage"]["chatId"], two.as_str());
    assert_eq!(data[1]["lastMessage"]["senderId"], "alice");
    assert!(data.iter().all(|c| c["role"] == "Member"));

    // Alice's own messages are not unread for her.
    let (_, hers) = app.chat_call(&of("alice"), Method::GET, "Chat", None).await;
    assert!(
        hers["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["unreadCount"] == 0),
        "{hers}"
    );

    let (_, first) = app
        .chat_call(
            &of("bob"),
            Method::GET,
            "Chat?pageNumber=1&pageSize=3",
            None,
        )
        .await;
    let (_, second) = app
        .chat_call(
            &of("bob"),
            Method::GET,
            "Chat?pageNumber=2&pageSize=3",
            None,
        )
        .await;
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        (first["totalPages"].clone(), first["hasNextPage"].clone()),
        (json!(2), json!(true))
    );
    assert_eq!(first["hasPreviousPage"], false);
    assert_eq!(ids_of(&second), [one.as_str()]);
    assert_eq!(
        (
            second["hasNextPage"].clone(),
            second["hasPreviousPage"].clone()
        ),
        (json!(false), json!(true))
    );
    for size in ["0", "101"] {
        let (status, problem) = app
            .chat_call(
                &of("bob"),
                Method::GET,
                &format!("Chat?pageSize={size}"),
                None,
            )
            .await;
        assert_field_error(status, &problem, "pageSize");
    }
}

#[tokio::test]
async fn owners_and_admins_manage_members_and_members_may_leave() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob", "carol"]).await;
    let members_path = format!("Chat/{chat}/members");
    let add = |actor: Actor, users: Value, role: Option<&'static str>| {
        let app = &app;
        let path = members_path.clone();
        let mut body = json!({ "userIds": users });
        if let Some(role) = role {
            body["role"] = json!(role);
        }
        async move { app.chat_call(&actor, Method::POST, &path, Some(body)).await }
    };
    let remove = |actor: Actor, user: &'static str| {
        let app = &app;
        let path = format!("{members_path}/{user}");
        async move { app.chat_call(&actor, Method::DELETE, &path, None).await.0 }
    };

    let (status, _) = add(of("bob"), json!(["dave"]), None).await;
    assert_eq!(status, 403, "a plain member cannot add");
    let (status, added) = add(of("alice"), json!(["dave", "bob"]), None).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(
        (
            how_many(&added["added"]),
            how_many(&added["alreadyMembers"])
        ),
        (1, 1),
        "{added}"
    );
    let (status, added) = add(of("alice"), json!(["erin"]), Some("Admin")).await;
    assert_eq!(status, 200, "{added}");
    let (status, added) = add(of("erin"), json!(["frank"]), None).await;
    assert_eq!(status, 200, "an admin adds: {added}");
    let (status, added) = add(Actor::Tenant, json!(["gina"]), None).await;
    assert_eq!(status, 200, "the tenant adds: {added}");
    let (status, problem) = add(of("alice"), json!(["ok", "not ok!"]), None).await;
    assert_field_error(status, &problem, "userIds");
    let (status, problem) = add(of("alice"), json!(users_named("many", 1_001)), None).await;
    assert_field_error(status, &problem, "userIds");
    let (status, problem) = app
        .chat_call(
            &of("alice"),
            Method::GET,
            &format!("{members_path}?pageSize=1001"),
            None,
        )
        .await;
    assert_field_error(status, &problem, "pageSize");
    let (status, problem) = add(of("alice"), json!(["x"]), Some("Owner")).await;
    assert_eq!(status, 400, "{problem}");
    let dave = app.get_chat(&of("dave"), &chat).await;
    assert_eq!(
        (dave["role"].as_str(), dave["memberCount"].as_i64()),
        (Some("Member"), Some(7))
    );
    assert_eq!(app.get_chat(&of("erin"), &chat).await["role"], "Admin");

    assert_eq!(
        remove(of("bob"), "carol").await,
        403,
        "a plain member cannot remove"
    );
    assert_eq!(remove(of("carol"), "carol").await, 204, "leaving");
    assert_eq!(remove(of("alice"), "dave").await, 204, "the owner removes");
    assert_eq!(remove(of("erin"), "frank").await, 204, "an admin removes");
    assert_eq!(
        remove(Actor::Tenant, "gina").await,
        204,
        "the tenant removes"
    );
    for gone in ["carol", "dave", "frank", "gina"] {
        let (status, _) = app
            .chat_call(&of(gone), Method::GET, &format!("Chat/{chat}"), None)
            .await;
        assert_eq!(status, 404, "{gone}");
        let (status, _) = app
            .chat_call(
                &of(gone),
                Method::POST,
                &format!("Chat/{chat}/messages"),
                Some(json!({ "message": "still here?" })),
            )
            .await;
        assert_eq!(status, 404, "{gone}");
        let (_, mine) = app.chat_call(&of(gone), Method::GET, "Chat", None).await;
        assert_eq!(mine["totalCount"], 0, "{gone}: {mine}");
    }
    let (_, members) = app
        .chat_call(&Actor::Tenant, Method::GET, &members_path, None)
        .await;
    let users: Vec<&str> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| str_of(m, "userId"))
        .collect();
    assert_eq!(users, ["alice", "bob", "erin"]);

    // Direct chats have fixed members.
    let direct = app
        .create_chat(
            &of("alice"),
            json!({ "type": "Direct", "memberIds": ["bob"] }),
        )
        .await;
    let direct = str_of(&direct, "id");
    let (status, _) = app
        .chat_call(
            &of("alice"),
            Method::POST,
            &format!("Chat/{direct}/members"),
            Some(json!({ "userIds": ["carol"] })),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .chat_call(
            &of("alice"),
            Method::DELETE,
            &format!("Chat/{direct}/members/bob"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(app.get_chat(&of("bob"), direct).await["memberCount"], 2);
}

#[tokio::test]
async fn members_are_paged_in_user_id_order() {
    let app = TestApp::spawn().await;
    let users: Vec<String> = (0..25).map(|i| format!("user-{i:03}")).collect();
    let chat = app
        .create_chat(&Actor::Tenant, json!({ "name": "Big", "memberIds": users }))
        .await;
    let chat = str_of(&chat, "id");
    let mut listed = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("Chat/{chat}/members?pageSize=10{after}");
        let (status, page) = app
            .chat_call(&of("user-007"), Method::GET, &path, None)
            .await;
        assert_eq!(status, 200, "{page}");
        listed.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| str_of(m, "userId").to_owned()),
        );
        match page["nextAfter"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
        assert!(listed.len() <= 25, "paging does not end");
    }
    assert_eq!(listed, users);
}

#[tokio::test]
async fn a_chat_is_deleted_by_its_owner_or_the_tenant() {
    let app = TestApp::spawn().await;
    let chat = app.create_group("alice", &["bob"]).await;
    app.send_message(&chat, "bob", "hi").await;
    let path = format!("Chat/{chat}");
    assert_eq!(
        app.chat_call(&of("bob"), Method::DELETE, &path, None)
            .await
            .0,
        403
    );
    let (status, _) = app
        .chat_call(
            &of("alice"),
            Method::POST,
            &format!("{path}/members"),
            Some(json!({ "userIds": ["erin"], "role": "Admin" })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .chat_call(&of("erin"), Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 403, "an admin cannot delete the chat");
    assert_eq!(
        app.chat_call(&of("alice"), Method::DELETE, &path, None)
            .await
            .0,
        204
    );
    for actor in [of("alice"), of("bob"), Actor::Tenant] {
        assert_eq!(
            app.chat_call(&actor, Method::GET, &path, None).await.0,
            404,
            "{actor:?}"
        );
        let (status, _) = app
            .chat_call(&actor, Method::GET, &format!("{path}/messages"), None)
            .await;
        assert_eq!(status, 404, "{actor:?}");
    }
    let (_, mine) = app.chat_call(&of("bob"), Method::GET, "Chat", None).await;
    assert_eq!(mine["totalCount"], 0);

    let other = app.create_group("alice", &["bob"]).await;
    let path = format!("Chat/{other}");
    assert_eq!(
        app.chat_call(&Actor::Tenant, Method::DELETE, &path, None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.chat_call(&of("alice"), Method::GET, &path, None)
            .await
            .0,
        404
    );
    assert_eq!(
        app.chat_call(&Actor::Tenant, Method::DELETE, &path, None)
            .await
            .0,
        404
    );
}
