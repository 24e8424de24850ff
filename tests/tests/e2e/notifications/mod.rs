//! The notification inbox over REST, its admin operations, the request guards and topics.

use herald_tests::TestApp;
use herald_tests::test_app::json_body;
use reqwest::Method;
use serde_json::Value;

mod admin;
mod create;
mod guards;
mod inbox;
mod topics;

/// The ids of a page of notifications, in order.
fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `GET {path}` as the user of `token`: the status and the JSON body.
async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app
        .as_user(&app.tenant, token, Method::GET, path)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json_body(response).await)
}
