//! How connections spread over the workers: evenly, whatever the kernel's `SO_REUSEPORT` hash picks.

use serde_json::json;
use weir_tests::client::raw_exchange;
use weir_tests::TestGateway;

/// Connections opened one after the other end up within one of each other on every worker (the kernel's hash
/// alone splits 10 connections 5 to 5 one time in four, 9 connections 3, 3 and 3 one time in twelve), and the
/// workers that handed connections on say so in `/metrics`.
#[tokio::test]
async fn connections_are_spread_evenly_over_the_workers() -> anyhow::Result<()> {
    // (workers, connections)
    for (workers, count) in [(2usize, 10usize), (3, 9)] {
        let gw = TestGateway::start(json!({
            "workers": workers,
            "routes": [{"name": "hello", "direct_response": {"status": 200, "body": "hi"}}]
        }))?;
        let mut open = Vec::new();
        for _ in 0..count {
            // One request answered on it: the gateway counts it open where it serves it.
            let (conn, _) = raw_exchange(gw.main(), b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n", b"hi").await?;
            open.push(conn);
        }
        let mut per_worker = Vec::new();
        for w in 0..workers {
            per_worker.push(gw.metric("weir_open_connections", &format!("worker=\"{w}\"")).await);
        }
        let (most, fewest) = (per_worker.iter().max().copied(), per_worker.iter().min().copied());
        assert_eq!(per_worker.iter().sum::<u64>(), count as u64, "{workers} workers: {per_worker:?}");
        assert!(most.zip(fewest).is_some_and(|(m, f)| m - f <= 1), "{workers} workers: {per_worker:?}");
        let accepted = gw.metric("weir_connections_total", "").await;
        let handed = gw.metric("weir_connections_handed_off_total", "").await;
        assert_eq!(accepted, count as u64, "each accepted once, by the worker the kernel chose");
        assert!(handed < accepted, "{handed} of {accepted} handed on");
        drop(open);
    }
    Ok(())
}
