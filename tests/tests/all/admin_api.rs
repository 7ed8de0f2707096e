//! `docs/admin-api/openapi.json` and the admin API in step: every documented operation is served, every
//! served operation is documented, and each answers with a status its description lists.

use serde_json::Value;
use std::collections::BTreeSet;
use weir_tests::TestGateway;

fn description() -> Value {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/admin-api/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(file).expect("openapi.json")).expect("openapi.json is JSON")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_description_lists_exactly_the_served_endpoints() {
    let served: BTreeSet<(String, String)> =
        weir::admin::api::ENDPOINTS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let doc = documented(&description());
    let missing: Vec<_> = served.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&served).collect();
    assert!(missing.is_empty(), "served but not in docs/admin-api/openapi.json: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
}

#[tokio::test]
async fn every_documented_operation_answers_with_a_documented_status() -> anyhow::Result<()> {
    let gw = TestGateway::start(serde_json::json!({"routes": [], "clusters": []}))?;
    let doc = description();
    for (method, path) in documented(&doc) {
        let concrete = path.replace("{name}", "nothing").replace("{version}", "9.9.9").replace("{id}", "nothing");
        let content_type = if path == "/api/v1/filters" { "application/wasm" } else { "application/json" };
        let body = if method == "GET" || method == "DELETE" { String::new() } else { "{}".to_string() };
        let reply = call(&gw, &method, &concrete, content_type, &body).await?;
        let status = reply.0.to_string();
        let op = &doc["paths"][&path][method.to_lowercase()];
        assert!(
            op["responses"].get(&status).is_some(),
            "{method} {path} answered {status}, which its description does not list: {}",
            reply.1
        );
        assert!(
            !reply.1["error"]["message"].as_str().unwrap_or("").starts_with("no admin endpoint"),
            "{method} {path} is documented but not routed"
        );
    }
    let (status, body) = call(&gw, "PATCH", "/api/v1/routes/x", "application/json", "{}").await?;
    assert_eq!(status, 404);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("no admin endpoint PATCH /api/v1/routes/x; the endpoints are: GET /api/v1/config, "));
    Ok(())
}

async fn call(
    gw: &TestGateway,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    gw.admin_call(method, path, content_type, body.as_bytes().to_vec()).await
}
