//! HTTP callouts: a filter pauses the request, calls another cluster, and resumes or answers from the
//! callout's answer (the crates.io SDK's dispatch_http_call pattern).

use serde_json::json;
use weir_tests::client::get_with;
use weir_tests::filters;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

#[tokio::test]
async fn a_callout_answer_resumes_or_denies_the_request() -> anyhow::Result<()> {
    let svc = Upstream::start("svc").await;
    let auth = Upstream::start("auth").await;
    let callout = |path: &str, cluster: &str| json!({"name": "auth", "module": filters::CALLOUT_WASM, "configuration": {"cluster": cluster, "path": path}});
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "deny", "match": {"path": {"prefix": "/deny"}}, "cluster": "svc", "filters": [callout("/status/403", "auth")]},
            {"name": "broken", "match": {"path": {"prefix": "/broken"}}, "cluster": "svc", "filters": [callout("/auth", "dead")]},
            {"name": "nowhere", "match": {"path": {"prefix": "/nowhere"}}, "cluster": "svc", "filters": [callout("/auth", "not-a-cluster")]},
            {"name": "allow", "cluster": "svc", "filters": [callout("/check", "auth")]}
        ],
        "clusters": [
            {"name": "svc", "endpoints": [svc.endpoint()]},
            {"name": "auth", "endpoints": [auth.endpoint()]},
            {"name": "dead", "endpoints": [weir_tests::upstream::closed_port()]}
        ]
    }))?;

    // Allowed: the callout's body comes along as a header, and the request goes on.
    let reply = get_with(gw.main(), "shop.test", "/orders/7", &[]).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    let callout_body: serde_json::Value =
        serde_json::from_str(echo["headers"]["x-callout-body"].as_str().unwrap_or("null"))?;
    assert_eq!(callout_body["upstream"], "auth");
    assert_eq!(callout_body["uri"], "/check");
    assert_eq!(callout_body["headers"]["host"], "auth.internal", "the callout's :authority");
    assert_eq!(callout_body["headers"]["x-original-path"], "/orders/7");
    assert_eq!((auth.requests(), svc.requests()), (1, 1));

    // Denied: the callout answered 403, the filter answers with its own 403.
    let reply = get_with(gw.main(), "shop.test", "/deny", &[]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (403, "denied\n"));
    assert_eq!(reply.header("x-callout-status"), "403");
    assert_eq!(svc.requests(), 1, "a denied request never reaches the service");

    // The callout cannot connect: delivered as a failure (no headers).
    // A cluster nothing listens on: the callout is answered 503, as Envoy's async client answers it (measured by
    // tests/differential/languages.py), so the filter sees a status, not a failure.
    let reply = get_with(gw.main(), "shop.test", "/broken", &[]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (403, "denied\n"));
    assert_eq!(reply.header("x-callout-status"), "503");

    // An unknown cluster: dispatch_http_call fails at once (BAD_ARGUMENT).
    let reply = get_with(gw.main(), "shop.test", "/nowhere", &[]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (500, "dispatch failed\n"));
    Ok(())
}
