//! The minimal header-only test filter `add_header` (the one `bench/run`'s `minN` variants measure)
//! in a chain of two on a real request: one added request header per filter in chain order, one
//! added response header per filter in reverse order.

use serde_json::json;
use weir_tests::client::get_with;
use weir_tests::filters;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

fn add_header_filter(name: &str) -> serde_json::Value {
    json!({"name": name, "module": filters::ADD_HEADER_WASM, "configuration": {"name": name}})
}

#[tokio::test]
async fn a_chain_of_add_header_filters_adds_one_header_per_phase_in_chain_order() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": [add_header_filter("f1"), add_header_filter("f2")]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let reply = get_with(gw.main(), "shop.test", "/items", &[]).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["uri"], "/items", "the filters change nothing but their own headers");
    assert_eq!(echo["headers"]["x-add-header"], "f1, f2", "each filter added one value, in chain order: {echo}");
    let order: Vec<&str> =
        reply.headers.get_all("x-add-header-order").iter().map(|v| v.to_str().unwrap_or_default()).collect();
    assert_eq!(order, ["f2", "f1"], "response callbacks run last filter first, one value each");
    assert_eq!(up.requests(), 1);
    Ok(())
}

/// A filter that exports body callbacks sees a response with a `content-length`: hyper stops polling the
/// body once that many bytes are written, so the body must say it ended with its last bytes, or the
/// request looks cut short and its upstream connection is closed instead of reused.
#[tokio::test]
async fn responses_with_a_length_complete_through_body_callbacks_and_reuse_the_upstream_connection(
) -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "workers": 1,
        "routes": [{"name": "api", "cluster": "svc", "filters": [add_header_filter("f1")]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    for i in 0..5 {
        let reply = get_with(gw.main(), "shop.test", &format!("/items/{i}"), &[]).await?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(!reply.header("content-length").is_empty(), "the upstream's length goes through");
        assert_eq!(reply.json()["uri"], format!("/items/{i}"));
    }
    assert_eq!(up.requests(), 5);
    assert_eq!(up.connections(), 1, "every request completed, so one pooled connection served them all");
    Ok(())
}
