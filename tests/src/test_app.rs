//! `TestApp`: a tenant on a freshly started `herald-api`, and typed helpers to call it.

use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::database::TestDatabase;
use crate::process::HeraldProcess;
use crate::{TEST_JWT_SECRET, redis_url};

/// A tenant and its API key.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: Uuid,
    pub api_key: String,
}

pub struct TestApp {
    pub api: HeraldProcess,
    /// The Redis this test's processes use (the shared one, or a private one).
    pub redis_url: String,
    pub pool: PgPool,
    pub tenant: Tenant,
    pub redis_prefix: String,
    pub client: Client,
    pub db: TestDatabase,
}

impl TestApp {
    /// A new database, a new Redis prefix, a running `herald-api` and one tenant.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Like [`TestApp::spawn`], with extra environment for `herald-api`.
    pub async fn spawn_with(extra_env: &[(&str, &str)]) -> Self {
        let db = TestDatabase::create().await;
        let redis_prefix = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let redis_url = extra_env
            .iter()
            .find(|(k, _)| *k == "REDIS_URL")
            .map_or_else(redis_url, |(_, v)| v.to_string());
        let mut env = base_env(&db.url, &redis_url, &redis_prefix);
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut api = HeraldProcess::start("herald-api", &env).await;
        api.wait_healthy().await;
        let pool = db.pool().await;
        let tenant = create_tenant(&pool, "acme").await;
        Self {
            api,
            redis_url,
            pool,
            tenant,
            redis_prefix,
            client: Client::new(),
            db,
        }
    }

    /// The environment every Herald process of this test runs with.
    pub fn env(&self) -> Vec<(String, String)> {
        base_env(&self.db.url, &self.redis_url, &self.redis_prefix)
    }

    pub fn base_url(&self) -> String {
        self.api.base_url()
    }

    /// `{base}/tenant/{tenant}/v1/{path}`
    pub fn tenant_url(&self, tenant: &Tenant, path: &str) -> String {
        format!("{}/tenant/{}/v1/{path}", self.base_url(), tenant.id)
    }

    /// A request with the tenant's API key.
    pub fn as_backend(
        &self,
        tenant: &Tenant,
        method: reqwest::Method,
        path: &str,
    ) -> RequestBuilder {
        self.client
            .request(method, self.tenant_url(tenant, path))
            .header("X-API-Key", &tenant.api_key)
    }

    /// A request with a user's bearer token.
    pub fn as_user(
        &self,
        tenant: &Tenant,
        token: &str,
        method: reqwest::Method,
        path: &str,
    ) -> RequestBuilder {
        self.client
            .request(method, self.tenant_url(tenant, path))
            .bearer_auth(token)
    }

    /// Another tenant in the same installation.
    pub async fn create_tenant(&self, name: &str) -> Tenant {
        create_tenant(&self.pool, name).await
    }

    /// A user token from token exchange.
    pub async fn token_for(&self, tenant: &Tenant, user_id: &str) -> String {
        let response = self
            .as_backend(tenant, reqwest::Method::POST, "Auth/token-exchange")
            .json(&json!({ "userId": user_id }))
            .send()
            .await
            .expect("token exchange");
        assert_eq!(response.status(), 200, "token exchange failed");
        let body: Value = response.json().await.expect("token json");
        body["token"].as_str().expect("token").to_owned()
    }
}

/// Reads a JSON body, failing the test with the status and raw text when it is not JSON.
pub async fn json_body(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"))
}

fn base_env(database_url: &str, redis_url: &str, redis_prefix: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis_url),
        ("HERALD_REDIS_PREFIX", redis_prefix),
        ("HERALD_JWT_SECRET", TEST_JWT_SECRET),
        ("HERALD_SECRETS_KEY", crate::TEST_SECRETS_KEY),
        ("HERALD_HOST", "127.0.0.1"),
        ("HERALD_AUTO_MIGRATE", "false"),
        ("RUST_LOG", "info,sqlx=warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn create_tenant(pool: &PgPool, name: &str) -> Tenant {
    let key = herald_shared::auth::api_key::generate();
    let mut tx = pool.begin().await.expect("tx");
    let tenant = herald_shared::db::tenants::insert(&mut tx, name)
        .await
        .expect("tenant");
    herald_shared::db::api_keys::insert(&mut tx, tenant.id, &key)
        .await
        .expect("key");
    tx.commit().await.expect("commit");
    Tenant {
        id: tenant.id,
        api_key: key.plaintext,
    }
}

impl TestApp {
    /// `POST /Notifications` with the tenant's API key; panics unless 201.
    pub async fn create_notification(&self, tenant: &Tenant, body: Value) -> Value {
        let response = self
            .as_backend(tenant, reqwest::Method::POST, "Notifications")
            .json(&body)
            .send()
            .await
            .expect("create notification");
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, 201, "create failed: {body}");
        body
    }

    /// A minimal valid notification for `user_id`, with `overrides` merged in.
    pub async fn notify(&self, tenant: &Tenant, user_id: &str, overrides: Value) -> Value {
        let mut body = json!({
            "userId": user_id,
            "subject": "Hello",
            "message": "World",
            "type": "SystemAnnouncement",
        });
        if let (Some(base), Some(extra)) = (body.as_object_mut(), overrides.as_object()) {
            base.extend(extra.clone());
        }
        self.create_notification(tenant, body).await
    }

    /// Listens on a user's real-time channel, as a hub node would.
    pub async fn listen(&self, tenant: &Tenant, user_id: &str) -> crate::events::EventListener {
        crate::events::EventListener::subscribe(
            &self.redis_url,
            &self.redis_prefix,
            tenant.id,
            user_id,
        )
        .await
    }
}

impl TestApp {
    /// Starts another Herald process (a worker, a second API) on this test's database and
    /// Redis prefix, with `extra_env` on top; waits until it answers `/healthz`.
    pub async fn start(&self, binary: &str, extra_env: &[(&str, &str)]) -> HeraldProcess {
        let mut env = self.env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut process = HeraldProcess::start(binary, &env).await;
        process.wait_healthy().await;
        process
    }

    /// Polls `GET /Notifications/{id}` (API key) until `done` holds; panics after `timeout`.
    pub async fn wait_for_notification(
        &self,
        tenant: &Tenant,
        id: &str,
        timeout: std::time::Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let response = self
                .as_backend(tenant, reqwest::Method::GET, &format!("Notifications/{id}"))
                .send()
                .await
                .expect("get notification");
            let body = json_body(response).await;
            if done(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "condition not reached in {timeout:?}: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
