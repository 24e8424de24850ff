//! Typed helpers for chat (`/Chat…`): who acts (the tenant's key, the key acting as a user with
//! `Of-User-Id`, or a user's own token), creating chats and sending messages, history paging,
//! chat broadcasts, and seed 000's chat client.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audience::status_and_body;
use crate::signalr::{Seed, SignalRClient};
use crate::{Tenant, TestApp};

/// Who makes a chat call.
#[derive(Clone, Debug)]
pub enum Actor {
    /// The tenant's API key alone: the tenant (admin).
    Tenant,
    /// The tenant's API key with `Of-User-Id: {user}`.
    KeyOf(String),
    /// A user's own bearer token.
    Token(String),
}

/// The tenant's API key acting as `user` (`Of-User-Id`).
pub fn of(user: &str) -> Actor {
    Actor::KeyOf(user.to_owned())
}

impl TestApp {
    /// A request with the tenant's API key and `Of-User-Id: {user_id}`.
    pub fn as_user_of(
        &self,
        tenant: &Tenant,
        user_id: &str,
        method: Method,
        path: &str,
    ) -> RequestBuilder {
        self.as_backend(tenant, method, path)
            .header("Of-User-Id", user_id)
    }

    /// A request in `tenant` made by `actor`.
    pub fn as_actor(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        method: Method,
        path: &str,
    ) -> RequestBuilder {
        match actor {
            Actor::Tenant => self.as_backend(tenant, method, path),
            Actor::KeyOf(user) => self.as_user_of(tenant, user, method, path),
            Actor::Token(token) => self.as_user(tenant, token, method, path),
        }
    }

    /// `method path` in the app's tenant by `actor`, with an optional JSON body: the status and
    /// the JSON body (`Null` when empty).
    pub async fn chat_call(
        &self,
        actor: &Actor,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.chat_call_in(&self.tenant, actor, method, path, body)
            .await
    }

    /// Like [`TestApp::chat_call`], in `tenant`.
    pub async fn chat_call_in(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.as_actor(tenant, actor, method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        status_and_body(request.send().await.expect("request")).await
    }

    /// `POST /Chat` by `actor`; panics unless 201. Returns the chat.
    pub async fn create_chat(&self, actor: &Actor, body: Value) -> Value {
        let (status, chat) = self
            .chat_call(actor, Method::POST, "Chat", Some(body))
            .await;
        assert_eq!(status, 201, "create chat: {chat}");
        chat
    }

    /// A group chat `owner` creates with `members`; returns its id.
    pub async fn create_group(&self, owner: &str, members: &[&str]) -> String {
        let chat = self
            .create_chat(
                &of(owner),
                json!({ "type": "Group", "name": "Team", "memberIds": members }),
            )
            .await;
        chat["id"].as_str().expect("chat id").to_owned()
    }

    /// `POST /Chat/{chat}/messages` as `sender` (`Of-User-Id`); panics unless 201. Returns the
    /// message.
    pub async fn send_message(&self, chat_id: &str, sender: &str, text: &str) -> Value {
        self.send_chat_message(&of(sender), chat_id, json!({ "message": text }))
            .await
    }

    /// `POST /Chat/{chat}/messages` by `actor` with `body`; panics unless 201.
    pub async fn send_chat_message(&self, actor: &Actor, chat_id: &str, body: Value) -> Value {
        let (status, message) = self
            .chat_call(
                actor,
                Method::POST,
                &format!("Chat/{chat_id}/messages"),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "send message: {message}");
        message
    }

    /// One page of `GET /Chat/{chat}/messages?{query}` by `actor`; panics unless 200.
    pub async fn chat_history(&self, actor: &Actor, chat_id: &str, query: &str) -> Value {
        let (status, page) = self
            .chat_call(
                actor,
                Method::GET,
                &format!("Chat/{chat_id}/messages?{query}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "history ?{query}: {page}");
        page
    }

    /// `PUT /Chat/{chat}/read` with `body` as `user` (`Of-User-Id`); panics unless 200. Returns
    /// the read state.
    pub async fn mark_read(&self, user: &str, chat_id: &str, body: Value) -> Value {
        let (status, read) = self
            .chat_call(
                &of(user),
                Method::PUT,
                &format!("Chat/{chat_id}/read"),
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{read}");
        read
    }

    /// `GET /Chat/{chat}` by `actor`; panics unless 200.
    pub async fn get_chat(&self, actor: &Actor, chat_id: &str) -> Value {
        let (status, chat) = self
            .chat_call(actor, Method::GET, &format!("Chat/{chat_id}"), None)
            .await;
        assert_eq!(status, 200, "get chat: {chat}");
        chat
    }

    /// Polls `GET /Chat/broadcast/{id}` as `sender` until its status is `Completed`; panics
    /// after `timeout`.
    pub async fn wait_for_chat_broadcast(
        &self,
        sender: &str,
        id: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self
                .chat_call(
                    &of(sender),
                    Method::GET,
                    &format!("Chat/broadcast/{id}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "get chat broadcast: {body}");
            if body["status"] == "Completed" {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "chat broadcast not Completed after {timeout:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A connected SignalR client of `user_id` in `tenant` running seed 000's chat client code.
    pub async fn connect_chat_user(&self, tenant: &Tenant, user_id: &str) -> SignalRClient {
        let options = self
            .client_options(tenant, user_id)
            .await
            .seed(Seed::Chat000);
        SignalRClient::connect(options).await
    }

    /// Writes a message straight into the database as if `sender` had sent it at `at` (for
    /// retention tests); returns its id, a UUIDv7 whose timestamp is `at`.
    pub async fn insert_chat_message_at(
        &self,
        chat_id: &str,
        sender: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Uuid {
        let id = uuid_v7_at(at);
        sqlx::query(
            "INSERT INTO chat_messages (tenant_id, chat_id, id, sender_id, message, content_type, \
             created_at) VALUES ($1, $2::uuid, $3, $4, $5, 'Text', $6)",
        )
        .bind(self.tenant.id)
        .bind(chat_id)
        .bind(id)
        .bind(sender)
        .bind(text)
        .bind(at)
        .execute(&self.pool)
        .await
        .expect("insert chat message");
        id
    }
}

/// A UUIDv7 whose timestamp is `at` (random otherwise), as Herald makes message ids.
pub fn uuid_v7_at(at: DateTime<Utc>) -> Uuid {
    let random = Uuid::new_v4();
    let bytes: [u8; 10] = random.as_bytes()[..10].try_into().expect("10 bytes");
    let millis = u64::try_from(at.timestamp_millis()).expect("after 1970");
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

/// The ids of a page's messages (`data[].id`), in order.
pub fn ids_of(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {page}"))
        .iter()
        .map(|m| m["id"].as_str().expect("message id").to_owned())
        .collect()
}

/// The field errors of a problem for `field` (panics when there are none).
pub fn field_errors(problem: &Value, field: &str) -> Vec<String> {
    problem["errors"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no field error for {field:?} in {problem}"))
        .iter()
        .map(|m| m.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts a 400 problem naming `field` (a field error whose key is `field` or starts with
/// `field[` / `field.`, for list items and map entries).
pub fn assert_field_error(status: u16, problem: &Value, field: &str) {
    assert_eq!(status, 400, "expected a 400 naming {field}: {problem}");
    let errors = problem["errors"]
        .as_object()
        .unwrap_or_else(|| panic!("no field errors (wanted {field}): {problem}"));
    assert!(
        errors.keys().any(|key| key == field
            || key.starts_with(&format!("{field}["))
            || key.starts_with(&format!("{field}."))),
        "no field error for {field}: {problem}"
    );
}

/// Metadata with `keys` entries.
pub fn metadata_of(keys: usize) -> Value {
    Value::Object((0..keys).map(|i| (format!("k{i}"), json!("v"))).collect())
}

/// `value[field]` as a string; panics when it is not one.
pub fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {value}"))
}

/// The single count a query returns.
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// How many a response field counts: it may be a list of user ids or a number (`added`,
/// `alreadyMembers`).
pub fn how_many(value: &Value) -> usize {
    value
        .as_array()
        .map(Vec::len)
        .or_else(|| value.as_u64().map(|n| usize::try_from(n).unwrap()))
        .unwrap_or_else(|| panic!("neither a list nor a number: {value}"))
}

/// `{prefix}-00000`, `{prefix}-00001`, …: `n` user ids.
pub fn users_named(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

/// Sends `n` messages `"{prefix} {i}"` (i from 1) as `sender`; returns their ids, oldest first.
pub async fn send_many(
    app: &TestApp,
    chat: &str,
    sender: &str,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 1..=n {
        let message = app
            .send_message(chat, sender, &format!("{prefix} {i}"))
            .await;
        ids.push(str_of(&message, "id").to_owned());
    }
    ids
}

/// `user`'s unread count in `chat`.
pub async fn unread(app: &TestApp, user: &str, chat: &str) -> i64 {
    app.get_chat(&of(user), chat).await["unreadCount"]
        .as_i64()
        .expect("unreadCount")
}

/// The entry of `user` in the info of a message (as its sender, alice, sees it).
pub async fn receipt(app: &TestApp, chat: &str, message: &str, user: &str) -> Value {
    let path = format!("Chat/{chat}/messages/{message}/info");
    let (status, info) = app.chat_call(&of("alice"), Method::GET, &path, None).await;
    assert_eq!(status, 200, "{info}");
    info["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {info}"))
        .iter()
        .find(|m| m["userId"] == user)
        .unwrap_or_else(|| panic!("{user} missing from {info}"))
        .clone()
}
