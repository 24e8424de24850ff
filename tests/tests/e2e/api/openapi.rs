//! The committed OpenAPI document matches the code and is valid OpenAPI.

use std::path::PathBuf;

use herald_tests::TestApp;
use serde_json::Value;

fn committed_spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json")
}

#[tokio::test]
async fn committed_spec_matches_what_the_server_serves() {
    let app = TestApp::spawn().await;
    let served: Value = app
        .client
        .get(format!("{}/openapi.json", app.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(committed_spec_path()).expect("openapi/openapi.json is committed"),
    )
    .expect("openapi/openapi.json is JSON");
    assert!(
        served == committed,
        "openapi/openapi.json is out of date: run scripts/regen-openapi and commit the result"
    );

    let swagger = app
        .client
        .get(format!("{}/swagger/", app.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(swagger.status(), 200);
    assert!(swagger.text().await.unwrap().contains("swagger-ui"));
}

#[test]
fn committed_spec_passes_an_external_openapi_validator() {
    let validator = std::env::var("HERALD_OPENAPI_VALIDATOR")
        .expect("HERALD_OPENAPI_VALIDATOR names openapi-spec-validator (scripts/test sets it)");
    let output = std::process::Command::new(&validator)
        .arg(committed_spec_path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {validator}: {e}"));
    assert!(
        output.status.success(),
        "openapi-spec-validator rejected the spec:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_operation_is_documented_for_application_developers() {
    let spec: Value = serde_json::from_str(&herald_api::openapi_json()).unwrap();
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("ApiKey") && schemes.contains_key("Bearer"));
    for (path, item) in spec["paths"].as_object().unwrap() {
        assert!(
            path.starts_with("/tenant/{tenantId}/v1/"),
            "{path}: tenant routes only"
        );
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            assert!(operation["summary"].is_string(), "{name}: no summary");
            assert!(operation["security"].is_array(), "{name}: no security");
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                assert!(
                    parameter["description"].is_string(),
                    "{name}: parameter {} undocumented",
                    parameter["name"]
                );
            }
            let responses = operation["responses"].as_object().unwrap();
            for status in ["400", "401", "500"] {
                assert!(
                    responses.contains_key(status),
                    "{name}: no {status} response"
                );
            }
        }
    }
}
