//! Hub helpers for `TestApp`: clients, hub nodes, and events published the way Herald's
//! workers publish them.

use herald_shared::domain::UserId;
use herald_shared::events::{self, MessagingEvent};
use uuid::Uuid;

use crate::process::HeraldProcess;
use crate::raw_hub::{RawHubClient, Refused};
use crate::signalr::{ClientOptions, SignalRClient};
use crate::{Tenant, TestApp};

/// The hub's WebSocket URL on a node: `ws://…/tenant/{tenantId}/v1/hub?{query}`.
pub fn hub_ws_url(base_url: &str, tenant_id: Uuid, query: &str) -> String {
    let base = base_url.replacen("http://", "ws://", 1);
    format!("{base}/tenant/{tenant_id}/v1/hub?{query}")
}

impl TestApp {
    /// How a user's SignalR client connects to `herald-api` (one base URL for REST and hub).
    pub async fn client_options(&self, tenant: &Tenant, user_id: &str) -> ClientOptions {
        let token = self.token_for(tenant, user_id).await;
        ClientOptions::new(self.base_url(), tenant.id, token)
    }

    /// A connected SignalR client of `user_id` in the app's tenant.
    pub async fn connect_user(&self, user_id: &str) -> SignalRClient {
        SignalRClient::connect(self.client_options(&self.tenant, user_id).await).await
    }

    /// `POST …/hub/negotiate?{query}` on `base_url`, with a bearer token when given.
    pub async fn negotiate(
        &self,
        base_url: &str,
        token: Option<&str>,
        query: &str,
    ) -> reqwest::Response {
        let url = format!(
            "{base_url}/tenant/{}/v1/hub/negotiate?{query}",
            self.tenant.id
        );
        let mut request = self
            .client
            .post(url)
            .header("X-Requested-With", "XMLHttpRequest");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("negotiate")
    }

    /// A raw protocol client of `user_id`, negotiated (version 1) and handshaken on `base_url`.
    pub async fn raw_client(&self, base_url: &str, user_id: &str) -> RawHubClient {
        match self.try_raw_client(base_url, user_id).await {
            Ok(client) => client,
            Err(Refused::Status(status)) => panic!("upgrade refused with {status}"),
            Err(Refused::Other(error)) => panic!("upgrade failed: {error}"),
        }
    }

    /// Like [`Self::raw_client`], with a refused upgrade returned rather than a panic (a node
    /// answers 503 while it cannot reach Redis to check the connection token).
    pub async fn try_raw_client(
        &self,
        base_url: &str,
        user_id: &str,
    ) -> Result<RawHubClient, Refused> {
        let token = self.token_for(&self.tenant, user_id).await;
        let negotiated: serde_json::Value = self
            .negotiate(base_url, Some(&token), "negotiateVersion=1")
            .await
            .json()
            .await
            .expect("negotiate json");
        let id = negotiated["connectionToken"].as_str().expect("a token");
        let url = hub_ws_url(base_url, self.tenant.id, &format!("id={id}"));
        let mut client = RawHubClient::connect(&url, Some(&token)).await?;
        assert_eq!(client.handshake().await, serde_json::json!({}));
        Ok(client)
    }

    /// Publishes events on a user's channel exactly as the API and workers do.
    pub async fn publish(&self, tenant: &Tenant, user_id: &str, events: Vec<MessagingEvent>) {
        let mut redis = self.redis().await;
        let user = UserId::parse(user_id).expect("user id");
        let pairs: Vec<(&UserId, MessagingEvent)> =
            events.into_iter().map(|event| (&user, event)).collect();
        events::publish(&mut redis, &self.redis_prefix, tenant.id, &pairs)
            .await
            .expect("publish");
    }

    /// Publishes raw payloads on a user's channel in one pipeline; returns, per payload, how
    /// many hub nodes received it.
    pub async fn publish_raw(
        &self,
        tenant: &Tenant,
        user_id: &str,
        payloads: &[String],
    ) -> Vec<i64> {
        let mut redis = self.redis().await;
        let channel = events::user_channel(&self.redis_prefix, tenant.id, user_id);
        let mut pipe = redis::pipe();
        for payload in payloads {
            pipe.publish(&channel, payload);
        }
        pipe.query_async(&mut redis).await.expect("publish")
    }

    /// Marks notifications delivered, as the delivery worker does.
    pub async fn mark_sent(&self, ids: &[Uuid]) {
        sqlx::query("UPDATE notifications SET status = 'Sent', sent_at = now() WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .expect("mark sent");
    }

    /// Moves a delivered notification `by` into the past (its id encodes its creation time, so
    /// the id changes too); returns the new id.
    pub async fn backdate(&self, id: Uuid, by: chrono::Duration) -> Uuid {
        let at = chrono::Utc::now() - by;
        let millis = u64::try_from(at.timestamp_millis()).expect("a time after 1970");
        let old_id = uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid();
        sqlx::query(
            "UPDATE notifications SET id = $2, created_at = $3, sent_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(old_id)
        .bind(herald_shared::domain::ids::created_at(old_id))
        .execute(&self.pool)
        .await
        .expect("backdate");
        old_id
    }

    /// Starts a `herald-hub` node on `port` (0: one the kernel picks), with the app's database, Redis prefix and secret.
    pub async fn start_hub_node(&self, port: u16, extra_env: &[(&str, &str)]) -> HeraldProcess {
        let mut env = self.env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut node = HeraldProcess::start_on("herald-hub", port, &env).await;
        node.wait_healthy().await;
        node
    }

    /// Starts a `herald-hub` node on a port the kernel picks.
    pub async fn spawn_hub_node(&self) -> HeraldProcess {
        self.start_hub_node(0, &[]).await
    }

    async fn redis(&self) -> redis::aio::ConnectionManager {
        // The Redis this test's processes use (a private one when the test started one).
        redis::Client::open(self.redis_url.as_str())
            .expect("redis url")
            .get_connection_manager()
            .await
            .expect("redis")
    }
}
