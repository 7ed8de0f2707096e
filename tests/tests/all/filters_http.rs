//! proxy-wasm filters (the crates.io SDK's, built from tests/filters) run on real requests: header
//! phases in chain order and in reverse, local responses, pseudo-header rewrites, traps and policies.

use serde_json::json;
use weir_tests::client::get_with;
use weir_tests::filters;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

fn headers_filter(name: &str) -> serde_json::Value {
    json!({"name": name, "module": filters::HEADERS_WASM, "configuration": {"name": name}})
}

fn all_values(reply: &weir_tests::client::Reply, name: &str) -> Vec<String> {
    reply.headers.get_all(name).iter().map(|v| v.to_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn a_chain_runs_request_phases_in_order_and_response_phases_in_reverse() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": [headers_filter("alpha"), headers_filter("beta")]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let reply =
        get_with(gw.main(), "shop.test", "/orders?id=1", &[("x-replace", "original"), ("x-remove", "gone")]).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["headers"]["x-wasm-name"], "alpha, beta", "both filters added, in chain order");
    assert_eq!(echo["headers"]["x-replace"], "replaced-by-beta", "the second filter saw the first one's change");
    assert!(echo["headers"].get("x-remove").is_none(), "{echo}");
    assert_eq!(echo["headers"]["x-wasm-path"], "/orders?id=1");
    assert_eq!(echo["headers"]["x-wasm-authority"], "shop.test");
    assert_eq!(echo["headers"]["x-wasm-method"], "GET");
    assert_eq!(all_values(&reply, "x-wasm-order"), ["beta", "alpha"], "response callbacks run last filter first");
    assert_eq!(reply.header("x-wasm-response-name"), "alpha");
    Ok(())
}

#[tokio::test]
async fn a_local_response_and_a_path_rewrite() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": [headers_filter("alpha"), headers_filter("beta")]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let reply = get_with(gw.main(), "shop.test", "/local/x", &[]).await?;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, "local from alpha\n");
    assert_eq!(reply.header("x-local"), "alpha");
    assert_eq!(
        all_values(&reply, "x-wasm-order"),
        ["alpha"],
        "the answering filter sees its own reply; beta never ran"
    );
    assert_eq!(up.requests(), 0, "nothing reached the upstream");

    let echo = get_with(gw.main(), "shop.test", "/rewrite/me", &[]).await?.json();
    assert_eq!(echo["uri"], "/rewritten", "a :path change is what goes upstream");
    assert_eq!(
        echo["headers"]["x-wasm-path"], "/rewritten",
        "beta saw the :path alpha rewrote (and set x-wasm-path last)"
    );
    Ok(())
}

#[tokio::test]
async fn filters_run_on_direct_responses_too() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "routes": [{"name": "hello", "direct_response": {"status": 200, "body": "hi"}, "filters": [headers_filter("solo")]}]
    }))?;
    let reply = get_with(gw.main(), "localhost", "/", &[]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "hi"));
    assert_eq!(reply.header("x-wasm-response-name"), "solo");
    Ok(())
}

#[tokio::test]
async fn a_trapping_filter_fails_its_stream_by_policy_and_is_replaced() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let panic =
        |name: &str, policy: &str| json!({"name": name, "module": filters::PANIC_WASM, "failure_policy": policy});
    let gw = TestGateway::start(json!({
        "workers": 1,
        "routes": [
            {"name": "closed", "match": {"path": {"prefix": "/closed"}}, "cluster": "svc", "filters": [panic("p", "fail_closed")]},
            {"name": "open", "match": {"path": {"prefix": "/open"}}, "cluster": "svc", "filters": [panic("p", "fail_open")]},
            {"name": "plain", "cluster": "svc"}
        ],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let reply = get_with(gw.main(), "localhost", "/closed", &[("x-panic", "1")]).await?;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"]["code"], "filter_failed");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        msg,
        "filter p on route closed failed: module p: proxy_on_request_headers trapped: wasm trap: wasm `unreachable` instruction executed",
        "one line for the client; the guest's backtrace goes to the log"
    );
    // The VM is replaced once its 10 ms retry delay has passed: the first request after that works,
    // through both of its phases (its context belongs to the new VM), and so do the ones after it.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    for _ in 0..3 {
        let ok = get_with(gw.main(), "localhost", "/closed", &[]).await?;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    // Fail open: the request goes on as if the filter were absent.
    assert_eq!(get_with(gw.main(), "localhost", "/open", &[("x-panic", "1")]).await?.status, 200);
    // Other routes never notice.
    assert_eq!(get_with(gw.main(), "localhost", "/other", &[]).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn a_refused_configuration_stops_the_start_with_the_filters_words() {
    let err = TestGateway::start(json!({
        "routes": [{"name": "api", "direct_response": {"status": 200}, "filters": [
            {"name": "h", "module": filters::HEADERS_WASM, "configuration": "{not json"}
        ]}]
    }))
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.starts_with("route api: filter h: module h: the filter rejected its configuration; the filter logged: headers root 1: rejecting configuration:"),
        "{err}"
    );
}
