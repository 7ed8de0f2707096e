//! What the gateway adds, passes on and removes: forwarding headers, request ids, trace context,
//! hop-by-hop headers.

use serde_json::json;
use weir_tests::client::get_with;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

#[tokio::test]
async fn forwarding_request_id_and_trace_headers() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "all", "cluster": "svc"}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    // Nothing given: an id and a trace are made.
    let reply = get_with(gw.main(), "localhost", "/", &[]).await?;
    let echo = reply.json();
    let id = echo["headers"]["x-request-id"].as_str().unwrap_or_default().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(reply.header("x-request-id"), id, "the client sees the id the upstream got");
    assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
    let tp = echo["headers"]["traceparent"].as_str().unwrap_or_default();
    assert_eq!(tp.len(), 55, "{tp}");
    assert!(tp.starts_with("00-") && tp.ends_with("-00"), "{tp}");

    // Given: passed on (the trace continues with the gateway's span as parent).
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let echo = get_with(
        gw.main(),
        "localhost",
        "/",
        &[
            ("x-request-id", "abc-123"),
            ("x-forwarded-for", "203.0.113.9"),
            ("traceparent", incoming),
            ("tracestate", "vendor=1"),
        ],
    )
    .await?
    .json();
    assert_eq!(echo["headers"]["x-request-id"], "abc-123");
    assert_eq!(echo["headers"]["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    let tp = echo["headers"]["traceparent"].as_str().unwrap_or_default();
    assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"), "{tp}");
    assert_ne!(tp, incoming);
    assert_eq!(echo["headers"]["tracestate"], "vendor=1");
    Ok(())
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [{"name": "all", "cluster": "svc"}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let echo = get_with(
        gw.main(),
        "localhost",
        "/",
        &[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eDp5"),
            ("x-end-to-end", "1"),
        ],
    )
    .await?
    .json();
    let headers = echo["headers"].as_object().expect("headers");
    for gone in ["x-hop", "keep-alive", "proxy-authorization"] {
        assert!(!headers.contains_key(gone), "{gone} was forwarded: {echo}");
    }
    assert_eq!(headers["x-end-to-end"], "1");
    Ok(())
}
