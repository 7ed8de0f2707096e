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
