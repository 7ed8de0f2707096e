//! The registry through the admin API on a running gateway: publish, attach, upgrade, roll back,
//! reconfigure, reorder and detach take effect on the next request without a restart; a change whose
//! filter refuses its configuration is refused with the filter's own log lines and changes nothing; a
//! stream that started before a swap finishes on the version it started with.

use serde_json::{json, Value};
use weir_tests::client::get_with;
use weir_tests::filters;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

/// One admin API call: (status, JSON body).
async fn admin(gw: &TestGateway, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    gw.admin_call(method, path, content_type, body).await.expect("admin answers")
}

async fn api(gw: &TestGateway, method: &str, path: &str, body: Value) -> (u16, Value) {
    admin(gw, method, path, "application/json", serde_json::to_vec(&body).expect("json")).await
}

/// Attaches `spec` (the API's attachment JSON) to route `api`; the status.
async fn attach(gw: &TestGateway, spec: Value) -> u16 {
    api(gw, "POST", "/api/v1/routes/api/filters", spec).await.0
}

async fn push(gw: &TestGateway, file: &str, name: &str, version: &str) -> (u16, Value) {
    let wasm = std::fs::read(file).expect("test filter built");
    admin(gw, "POST", &format!("/api/v1/filters?name={name}&version={version}"), "application/wasm", wasm).await
}

/// The `x-add-header` value the upstream saw, and the `x-wasm-name` (from the `headers` filter).
async fn seen(gw: &TestGateway, path: &str) -> (u16, String, String) {
    let reply = get_with(gw.main(), "shop.test", path, &[]).await.expect("request");
    if reply.status != 200 {
        return (reply.status.as_u16(), String::new(), String::new());
    }
    let echo = reply.json();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    (reply.status.as_u16(), text(&echo["headers"]["x-add-header"]), text(&echo["headers"]["x-wasm-name"]))
}

async fn gateway_with_route() -> (Upstream, TestGateway) {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({"routes": [], "clusters": []})).expect("gateway starts with no routes");
    assert_eq!(api(&gw, "PUT", "/api/v1/clusters/svc", json!({"endpoints": [up.endpoint()]})).await.0, 200);
    let (status, body) =
        api(&gw, "PUT", "/api/v1/routes/api", json!({"match": {"path": {"prefix": "/"}}, "cluster": "svc"})).await;
    assert_eq!(status, 200, "{body}");
    (up, gw)
}

#[tokio::test]
async fn publishing_is_content_addressed_and_versions_are_immutable() {
    let (_up, gw) = gateway_with_route().await;
    let (status, first) = push(&gw, filters::ADD_HEADER_WASM, "tagger", "1.0.0").await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["created"], true);
    let digest = first["filter"]["digest"].as_str().expect("digest").to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    assert_eq!(first["filter"]["abi"], "0.2.1");

    let (status, again) = push(&gw, filters::ADD_HEADER_WASM, "tagger", "1.0.0").await;
    assert_eq!((status, &again["created"]), (200, &json!(false)), "the same bytes again are a no-op: {again}");

    let (status, other) = push(&gw, filters::HEADERS_WASM, "tagger", "1.0.0").await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(
        other["error"]["message"],
        format!(
            "tagger@1.0.0 is already published with other bytes ({digest}); published versions are immutable: \
             publish this module as a new version"
        )
    );

    let table: Vec<(u16, &str, &str, String)> = vec![
        (400, "Tagger!", "1.0.0", "name \"Tagger!\" is invalid: '!' is not allowed".into()),
        (400, "tagger", "1.x", "\"1.x\" is not a semantic version".into()),
        (
            422,
            "tagger",
            "2.0.0",
            "module tagger: not a valid WebAssembly module: failed to parse WebAssembly module: unknown binary version"
                .into(),
        ),
    ];
    for (want, name, version, needle) in table {
        let (status, body) = if want == 422 {
            admin(
                &gw,
                "POST",
                &format!("/api/v1/filters?name={name}&version={version}"),
                "application/wasm",
                b"\0asm-garbage".to_vec(),
            )
            .await
        } else {
            push(&gw, filters::ADD_HEADER_WASM, name, version).await
        };
        let message = body["error"]["message"].as_str().unwrap_or_default().to_string();
        assert_eq!(status, want, "{name}@{version}: {body}");
        assert!(message.contains(&needle), "{name}@{version}: {message}");
    }
    let (_, list) = api(&gw, "GET", "/api/v1/filters", Value::Null).await;
    let versions: Vec<&str> =
        list["filters"].as_array().expect("list").iter().map(|f| f["version"].as_str().unwrap_or("")).collect();
    assert_eq!(versions, ["1.0.0"], "nothing refused was stored");
}

#[tokio::test]
async fn attach_upgrade_rollback_reconfigure_and_detach_take_effect_without_a_restart() {
    let (_up, gw) = gateway_with_route().await;
    assert_eq!(seen(&gw, "/a").await, (200, String::new(), String::new()), "no filters yet");
    assert_eq!(push(&gw, filters::ADD_HEADER_WASM, "tagger", "1.0.0").await.0, 201);
    assert_eq!(push(&gw, filters::HEADERS_WASM, "tagger", "2.0.0").await.0, 201);

    // A range pins the highest matching version by digest.
    let (status, body) = api(
        &gw,
        "POST",
        "/api/v1/routes/api/filters",
        json!({"filter": "tagger@^1", "configuration": {"name": "one"}}),
    )
    .await;
    assert_eq!((status, body["attached"].as_str()), (200, Some("tagger@1.0.0")), "{body}");
    assert!(body["generation"].as_u64().is_some() && body["swap_ms"].as_f64().is_some(), "{body}");
    assert_eq!(seen(&gw, "/a").await, (200, "one".into(), String::new()));

    // Upgrade: the same attachment name, a new version; the configuration is kept.
    let (status, body) = api(&gw, "POST", "/api/v1/routes/api/filters", json!({"filter": "tagger@2.0.0"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen(&gw, "/a").await, (200, String::new(), "one".into()), "version 2 is the headers filter");

    // Rollback, and a configuration change.
    assert_eq!(attach(&gw, json!({"filter": "tagger@1.0.0", "configuration": {"name": "uno"}})).await, 200);
    assert_eq!(seen(&gw, "/a").await, (200, "uno".into(), String::new()));

    // A second attachment first in the chain, then moved last.
    let (status, body) = api(
        &gw,
        "POST",
        "/api/v1/routes/api/filters",
        json!({"filter": "tagger@1", "name": "second", "configuration": {"name": "two"}, "position": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen(&gw, "/a").await.1, "two, uno", "request callbacks in chain order");
    assert_eq!(attach(&gw, json!({"filter": "tagger@1", "name": "second", "position": 5})).await, 200);
    assert_eq!(seen(&gw, "/a").await.1, "uno, two", "moved to the end, configuration kept");

    // Removing an attached version is refused; detaching then removing works.
    let (status, body) = api(&gw, "DELETE", "/api/v1/filters/tagger/1.0.0", Value::Null).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["message"],
        "tagger@1.0.0 is attached to route api; detach it first (weir route detach ROUTE NAME)"
    );
    for name in ["tagger", "second"] {
        assert_eq!(api(&gw, "DELETE", &format!("/api/v1/routes/api/filters/{name}"), Value::Null).await.0, 200);
    }
    assert_eq!(seen(&gw, "/a").await, (200, String::new(), String::new()), "detached");
    let (status, body) = api(&gw, "DELETE", "/api/v1/routes/api/filters/tagger", Value::Null).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("route \"api\" has no filter named \"tagger\"; its filters: none"))
    );
    assert_eq!(api(&gw, "DELETE", "/api/v1/filters/tagger/1.0.0", Value::Null).await.0, 200);
}

#[tokio::test]
async fn a_configuration_the_filter_refuses_is_not_activated_and_the_answer_carries_its_log_lines() {
    let (_up, gw) = gateway_with_route().await;
    assert_eq!(push(&gw, filters::ADD_HEADER_WASM, "tagger", "1.0.0").await.0, 201);
    assert_eq!(attach(&gw, json!({"filter": "tagger@1.0.0", "configuration": {"name": "ok"}})).await, 200);
    let (_, before) = api(&gw, "GET", "/api/v1/config", Value::Null).await;

    let (status, body) =
        api(&gw, "POST", "/api/v1/routes/api/filters", json!({"filter": "tagger@1.0.0", "configuration": {"name": 7}}))
            .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "filter_refused");
    let logs: Vec<&str> =
        body["error"]["filter_logs"].as_array().expect("logs").iter().filter_map(Value::as_str).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("rejecting configuration"), "the filter's own words: {logs:?}");

    let (_, after) = api(&gw, "GET", "/api/v1/config", Value::Null).await;
    assert_eq!(before["generation"], after["generation"], "nothing was stored");
    assert_eq!(seen(&gw, "/a").await, (200, "ok".into(), String::new()), "the previous configuration still serves");

    // A route the configuration parser refuses: every issue with its path.
    let (status, body) =
        api(&gw, "PUT", "/api/v1/routes/bad", json!({"cluster": "nowhere", "match": {"path": {"prefix": 3}}})).await;
    assert_eq!(status, 422, "{body}");
    let issues: Vec<String> = body["error"]["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| format!("{}: {}", i["path"].as_str().unwrap_or(""), i["message"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(issues.len(), 3, "{issues:?}");
    assert!(
        issues.iter().any(|i| i.starts_with("registry.routes[\"bad\"].cluster: unknown cluster \"nowhere\"")),
        "{issues:?}"
    );
    assert!(
        issues.iter().any(|i| i == "registry.routes[\"bad\"].match.path.prefix: expected a string, found a number"),
        "{issues:?}"
    );
}

#[tokio::test]
async fn a_request_in_flight_during_a_swap_finishes_on_the_version_it_started_with() {
    let (_up, gw) = gateway_with_route().await;
    assert_eq!(push(&gw, filters::ADD_HEADER_WASM, "tagger", "1.0.0").await.0, 201);
    assert_eq!(attach(&gw, json!({"filter": "tagger@1.0.0", "configuration": {"name": "old"}})).await, 200);
    let addr = gw.main();
    let slow = tokio::spawn(async move { get_with(addr, "shop.test", "/slow/600", &[]).await.expect("slow request") });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let (status, body) = api(
        &gw,
        "POST",
        "/api/v1/routes/api/filters",
        json!({"filter": "tagger@1.0.0", "configuration": {"name": "new"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen(&gw, "/a").await.1, "new", "new requests see the new configuration at once");
    let reply = slow.await.expect("join");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-add-header-order"), "old", "the response phase ran on the VM the request started on");
}

#[tokio::test]
async fn apply_writes_clusters_and_routes_as_one_change_and_prune_removes_the_rest() {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({"routes": [], "clusters": []})).expect("gateway");
    assert_eq!(push(&gw, filters::ADD_HEADER_WASM, "tagger", "1.2.0").await.0, 201);
    let doc = json!({
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}],
        "routes": [
            {"name": "one", "match": {"path": {"prefix": "/one"}}, "cluster": "svc",
             "filters": [{"filter": "tagger@~1.2", "configuration": {"name": "applied"}}]},
            {"name": "two", "match": {"path": {"prefix": "/two"}}, "cluster": "svc"}
        ]
    });
    let (status, body) = api(&gw, "POST", "/api/v1/apply", doc.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"]["routes"]["created"], json!(["one", "two"]));
    assert_eq!(seen(&gw, "/one").await, (200, "applied".into(), String::new()));
    assert_eq!(seen(&gw, "/two").await, (200, String::new(), String::new()));

    let (_, again) = api(&gw, "POST", "/api/v1/apply", doc).await;
    assert_eq!(again["applied"]["routes"]["unchanged"], json!(["one", "two"]), "apply is idempotent: {again}");

    let (status, body) = api(&gw, "POST", "/api/v1/apply?prune=true", json!({"clusters": [{"name": "svc", "endpoints": [up.endpoint()]}], "routes": [{"name": "two", "cluster": "svc"}]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"]["routes"]["removed"], json!(["one"]));
    assert_eq!(seen(&gw, "/one").await.1, "", "route one is gone; route two (any path) serves /one");

    // Process settings are not the registry's business; a broken document changes nothing.
    let (status, body) = api(&gw, "POST", "/api/v1/apply", json!({"listeners": []})).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap_or("").starts_with("$.listeners: apply writes only"), "{body}");
    let (status, body) = api(
        &gw,
        "POST",
        "/api/v1/apply",
        json!({"routes": [{"name": "x", "cluster": "svc", "filters": [{"filter": "tagger@^9"}]}]}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"]["message"],
        "route \"x\": filters[0]: no published version of \"tagger\" matches \"^9\"; published: 1.2.0"
    );
}
