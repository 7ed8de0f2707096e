//! Upstreams that are down or break: 502 with a JSON body, counted in the metrics, and the gateway
//! goes on serving.

use serde_json::json;
use weir_tests::client::get_with;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

#[tokio::test]
async fn unreachable_and_resetting_upstreams_answer_502() -> anyhow::Result<()> {
    let up = Upstream::start("flaky").await;
    let dead = weir_tests::upstream::closed_port();
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "dead", "match": {"path": {"prefix": "/dead"}}, "cluster": "dead"},
            {"name": "flaky", "cluster": "flaky"}
        ],
        "clusters": [
            {"name": "dead", "endpoints": [dead.clone()]},
            {"name": "flaky", "endpoints": [up.endpoint()]}
        ]
    }))?;
    let reply = get_with(gw.main(), "localhost", "/dead", &[("x-request-id", "req-dead-1")]).await?;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.header("x-request-id"), "req-dead-1");
    let body = reply.json();
    assert_eq!(body["error"]["code"], "upstream_connect_failed");
    assert_eq!(body["error"]["request_id"], "req-dead-1");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("upstream dead ({dead}) connection failed")), "{msg}");

    let reply = get_with(gw.main(), "localhost", "/reset", &[]).await?;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "upstream_failed");

    // Upstream statuses pass through untouched, and the gateway still serves.
    let reply = get_with(gw.main(), "localhost", "/status/503", &[]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (503, "status 503\n"));
    assert_eq!(get_with(gw.main(), "localhost", "/ok", &[]).await?.status, 200);

    let metrics = get_with(gw.admin(), "localhost", "/metrics", &[]).await?.body;
    let total = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(total("weir_upstream_errors_total{cluster=\"dead\",kind=\"connect\""), 1.0, "{metrics}");
    assert_eq!(total("weir_upstream_errors_total{cluster=\"flaky\",kind=\"protocol\""), 1.0, "{metrics}");
    assert_eq!(total("weir_requests_total{route=\"flaky\",status_class=\"5xx\""), 2.0, "{metrics}");
    assert_eq!(total("weir_requests_total{route=\"flaky\",status_class=\"2xx\""), 1.0, "{metrics}");
    Ok(())
}
