//! Pausing across callbacks: a filter pauses a request in its headers callback and resumes it later from
//! its root context's tick (set_effective_context + resume_http_request), while other requests on the
//! same worker go on.

use serde_json::json;
use std::time::{Duration, Instant};
use weir_tests::client::get_with;
use weir_tests::filters;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

#[tokio::test]
async fn a_paused_request_is_resumed_from_a_tick_and_others_are_not_held_up() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "workers": 1,
        "routes": [{"name": "api", "cluster": "svc", "filters": [{"name": "hold", "module": filters::PAUSE_RESUME_WASM}]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let addr = gw.main();
    let started = Instant::now();
    let held = tokio::spawn(async move { get_with(addr, "localhost", "/held", &[("x-hold-ms", "400")]).await });
    // While it is held, the same worker serves others.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quick = get_with(addr, "localhost", "/quick", &[]).await?;
    assert_eq!(quick.status, 200);
    assert_eq!(quick.header("x-held"), "");
    assert!(!held.is_finished(), "the held request is still paused while another one completed");
    assert_eq!(up.requests(), 1, "only the quick request reached the upstream so far");
    let held = held.await??;
    assert_eq!(held.status, 200, "{}", held.body);
    assert_eq!(held.header("x-held"), "yes");
    assert!(started.elapsed() >= Duration::from_millis(400), "resumed only once its time had passed");
    assert_eq!(held.json()["uri"], "/held");
    Ok(())
}

/// A filter that pauses in its last body callback (Envoy's StopIterationAndBuffer at the end of the stream) holds
/// the whole body until it resumes the stream; the body it changed meanwhile (here from its tick) is what goes on.
#[tokio::test]
async fn a_body_held_at_its_end_waits_for_the_resume_and_goes_on_as_changed() -> anyhow::Result<()> {
    use weir_tests::client::{call, request, Proto};
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": [{"name": "hold", "module": filters::PAUSE_RESUME_WASM}]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    // (header, request body, what the upstream must receive, what the client must get as the echo's end)
    let reply = call(
        gw.main(),
        &Proto::H1,
        request("POST", "localhost", "/held-body", &[("x-hold-body-ms", "150")], "payload", &Proto::H1),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["body"], "payload[resumed]", "the upstream got the body as the tick left it");

    let reply = call(
        gw.main(),
        &Proto::H1,
        request("POST", "localhost", "/held-response", &[("x-hold-response-body-ms", "150")], "x", &Proto::H1),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.ends_with("}[resumed]"), "the client got the response body as the tick left it: {}", reply.body);
    assert_eq!(reply.header("content-length"), "", "the filter removed it; the body is chunked");
    Ok(())
}

/// A filter attached with `allow_on_headers_stop_iteration` that pauses the response headers still gets the
/// response body (Envoy's StopIteration from encodeHeaders with that option), and decides on the headers from it:
/// here it answers 502 instead of a response whose body says `reject`, and lets any other go on, changed, with
/// the headers it set before pausing and from its body callback.
#[tokio::test]
async fn paused_response_headers_wait_for_the_body_the_filter_decides_on() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": [
            {"name": "outer", "module": filters::ADD_HEADER_WASM, "configuration": {"name": "outer"}},
            {"name": "hold", "module": filters::PAUSE_RESUME_WASM, "allow_on_headers_stop_iteration": true},
        ]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let inspect = [("x-inspect-response", "1")];
    let ok = get_with(gw.main(), "localhost", "/fine", &inspect).await?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        ok.body.starts_with("{\"") && ok.body.contains("\"/FINE\""),
        "the body as the filter changed it: {}",
        ok.body
    );
    assert_eq!(ok.header("x-inspected"), "yes", "the headers it set before pausing went on");
    assert_eq!(ok.header("x-verdict"), "accepted", "and the one it set from its body callback");
    assert_eq!(ok.header("x-add-header-order"), "outer", "the filter after it in response order got the headers");
    let refused = get_with(gw.main(), "localhost", "/reject-me", &inspect).await?;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert_eq!(refused.body, "rejected by its body");
    // Without the pause, the same route streams the upstream's answer untouched.
    let plain = get_with(gw.main(), "localhost", "/plain", &[]).await?;
    assert_eq!((plain.status.as_u16(), plain.json()["uri"].as_str()), (200, Some("/plain")));
    Ok(())
}

/// The request side of `allow_on_headers_stop_iteration`: a filter that holds the request headers gets the request
/// body meanwhile, changes it and the headers from its body callback, and the upstream gets both only then (or
/// never, when the filter answers instead).
#[tokio::test]
async fn paused_request_headers_wait_for_the_body_the_filter_decides_on() -> anyhow::Result<()> {
    use weir_tests::client::{call, request, Proto};
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": [
            {"name": "outer", "module": filters::ADD_HEADER_WASM, "configuration": {"name": "outer"}},
            {"name": "hold", "module": filters::PAUSE_RESUME_WASM, "allow_on_headers_stop_iteration": true},
            {"name": "inner", "module": filters::ADD_HEADER_WASM, "configuration": {"name": "inner"}},
        ]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let inspect = [("x-inspect-request", "1"), ("content-type", "text/plain")];
    for (name, proto) in [("h1", Proto::H1), ("h2c", Proto::H2c)] {
        let ok = call(gw.main(), &proto, request("POST", "localhost", "/fine", &inspect, "hello body", &proto)).await?;
        assert_eq!(ok.status, 200, "{name}: {}", ok.body);
        let echo = ok.json();
        assert_eq!(echo["body"], "HELLO BODY", "{name}: the upstream got the body as the filter changed it");
        assert_eq!(echo["headers"]["x-body-seen"], "10", "{name}: and the header it set from its body callback");
        assert_eq!(echo["headers"]["x-add-header"], "outer, inner", "{name}: the filter after it ran after the body");
    }
    let before = up.requests();
    let refused =
        call(gw.main(), &Proto::H1, request("POST", "localhost", "/no", &inspect, "please reject", &Proto::H1)).await?;
    assert_eq!((refused.status.as_u16(), refused.body.as_str()), (403, "rejected by its body"));
    assert_eq!(up.requests(), before, "a refused request never reached the upstream");
    Ok(())
}
