//! Typed helpers for recipient profiles and topics (`/Users`, `/Topics`): the audiences that
//! broadcasts reach.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::{Tenant, TestApp};

/// The status and the JSON body (`Value::Null` for an empty one, as with 204).
pub async fn status_and_body(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    if text.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
    (status, body)
}

impl TestApp {
    /// `method path` with the tenant's API key and an optional JSON body.
    pub async fn backend_call(
        &self,
        tenant: &Tenant,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.as_backend(tenant, method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        status_and_body(request.send().await.expect("request")).await
    }

    /// `PUT /Users/{userId}`; panics unless 200 or 201.
    pub async fn put_recipient(&self, tenant: &Tenant, user_id: &str, body: Value) -> Value {
        let (status, body) = self
            .backend_call(tenant, Method::PUT, &format!("Users/{user_id}"), Some(body))
            .await;
        assert!(status == 200 || status == 201, "{status}: {body}");
        body
    }

    /// `POST /Topics` with `name`; panics unless 201. Returns the topic.
    pub async fn create_topic(&self, tenant: &Tenant, name: &str) -> Value {
        let (status, body) = self
            .backend_call(
                tenant,
                Method::POST,
                "Topics",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// `PUT /Topics/{topicId}/subscribers`; panics unless 200. Returns `{added, alreadySubscribed}`.
    pub async fn subscribe(&self, tenant: &Tenant, topic_id: &str, user_ids: &[String]) -> Value {
        let (status, body) = self
            .backend_call(
                tenant,
                Method::PUT,
                &format!("Topics/{topic_id}/subscribers"),
                Some(json!({ "userIds": user_ids })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}
