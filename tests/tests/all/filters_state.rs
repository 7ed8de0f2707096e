//! The process-wide state hostcalls through real requests, with the `state` test filter: shared data with
//! CAS, metrics (and their export on the admin `/metrics`), and properties.

use serde_json::json;
use std::time::Duration;
use weir_tests::client::get_with;
use weir_tests::filters;
use weir_tests::TestGateway;

/// A gateway whose one route answers every request from the `state` filter.
fn gateway(workers: usize) -> anyhow::Result<TestGateway> {
    TestGateway::start(json!({
        "workers": workers,
        "routes": [{
            "name": "state",
            "direct_response": {"status": 204},
            "filters": [{"name": "state", "module": filters::STATE_WASM}]
        }]
    }))
}

/// The admin `/metrics` text once it contains every one of `lines` (filters end streams after the
/// response is sent, so gauge decrements may trail the replies a little).
async fn metrics_with(gw: &TestGateway, lines: &[&str]) -> anyhow::Result<String> {
    let mut text = String::new();
    for _ in 0..100 {
        text = get_with(gw.admin(), "localhost", "/metrics", &[]).await?.body;
        if lines.iter().all(|l| text.lines().any(|t| t == *l)) {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("/metrics never showed {lines:?}:\n{text}")
}

#[tokio::test]
async fn shared_data_metrics_and_properties_across_requests() -> anyhow::Result<()> {
    let gw = gateway(1)?;
    for n in 1..=3u64 {
        let path = format!("/hit/{n}?q=x");
        let reply = get_with(gw.main(), "shop.test", &path, &[("x-size", "100")]).await?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), "application/json");
        let body = reply.json();
        assert_eq!(body["hits"], n, "shared key hits counts requests: {body}");
        assert_eq!(body["counter"], n, "the counter, read back after this request's increment: {body}");
        // The gauge is +1 per request and -1 in on_log, which may run just after the reply is sent.
        let gauge = body["gauge"].as_u64().unwrap_or_default();
        assert!((1..=n).contains(&gauge), "gauge {gauge} after request {n}: {body}");
        assert_eq!(body["property"], path.as_str(), "set_property then get_property on the stream");
        assert_eq!(body["request_path"], path.as_str());
        assert_eq!(body["plugin_name"], "state");
        let source = body["source_address"].as_str().unwrap_or_default();
        let port = source.strip_prefix("127.0.0.1:").and_then(|p| p.parse::<u16>().ok());
        assert!(port.is_some_and(|p| p > 0), "source.address carries the client's port: {source}");
    }
    metrics_with(
        &gw,
        &[
            r#"weir_filter_counter_total{filter="state",name="test_requests_total"} 3"#,
            r#"weir_filter_gauge{filter="state",name="test_in_flight"} 0"#,
            r#"weir_filter_histogram_count{filter="state",name="test_body_sizes"} 3"#,
            r#"weir_filter_histogram_sum{filter="state",name="test_body_sizes"} 300.0"#,
        ],
    )
    .await?;
    // on_queue_ready runs on the registrant's worker after each enqueue: the root context drains the queue
    // and publishes its count, which a later request reads back.
    let mut dequeued = 0;
    for _ in 0..100 {
        let body = get_with(gw.main(), "shop.test", "/queue-check", &[]).await?.json();
        dequeued = body["dequeued"].as_u64().unwrap_or_default();
        if dequeued >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(dequeued >= 4, "on_queue_ready drained the queue: {dequeued} items");
    Ok(())
}

#[tokio::test]
async fn concurrent_requests_on_two_workers_count_each_hit_once() -> anyhow::Result<()> {
    let gw = gateway(2)?;
    let addr = gw.main();
    // The first write creates the key: the ABI has no create-if-absent (a missing key is written whatever the
    // CAS), so two workers racing on an absent key could both write 1. One request first, then the race.
    assert_eq!(get_with(addr, "shop.test", "/c/first", &[]).await?.json()["hits"], 1);
    let replies: Vec<_> = (0..20)
        .map(|i| tokio::spawn(async move { get_with(addr, "shop.test", &format!("/c/{i}"), &[]).await }))
        .collect();
    let mut hits = Vec::new();
    for reply in replies {
        let reply = reply.await??;
        assert_eq!(reply.status, 200, "{}", reply.body);
        hits.push(reply.json()["hits"].as_u64().unwrap_or_default());
    }
    hits.sort_unstable();
    assert_eq!(hits, (2..=21).collect::<Vec<u64>>(), "every CAS write counted exactly once, across VMs");
    metrics_with(&gw, &[r#"weir_filter_counter_total{filter="state",name="test_requests_total"} 21"#]).await?;
    Ok(())
}
