//! Connect, request and idle timeouts: each ends in a clear answer, never a hang.

use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_tests::client::get_with;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

#[tokio::test]
async fn request_timeout_answers_504() -> anyhow::Result<()> {
    let up = Upstream::start("slow").await;
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "route-timeout", "match": {"path": {"prefix": "/r"}}, "cluster": "slow", "prefix_rewrite": "/", "timeout_ms": 200},
            {"name": "cluster-timeout", "cluster": "slow"}
        ],
        "clusters": [{"name": "slow", "endpoints": [up.endpoint()], "request_timeout_ms": 300}]
    }))?;
    for (path, millis) in [("/r/slow/5000", 200), ("/slow/5000", 300)] {
        let started = Instant::now();
        let reply = get_with(gw.main(), "localhost", path, &[]).await?;
        assert_eq!(reply.status, 504, "{path}: {}", reply.body);
        let body = reply.json();
        assert_eq!(body["error"]["code"], "upstream_timeout");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("did not respond within {millis} ms")), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(4), "{path} hung for {:?}", started.elapsed());
    }
    // Within the bound, the same route answers.
    assert_eq!(get_with(gw.main(), "localhost", "/slow/10", &[]).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn connect_timeout_answers_504() -> anyhow::Result<()> {
    // A listener that never accepts, with its backlog filled: further SYNs go unanswered.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>()?.into())?;
    socket.listen(0)?;
    let black_hole: std::net::SocketAddr = socket.local_addr()?.as_socket().expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(black_hole)).await
        {
            fillers.push(s);
        }
    }
    let gw = TestGateway::start(json!({
        "routes": [{"name": "hole", "cluster": "hole"}],
        "clusters": [{"name": "hole", "endpoints": [black_hole.to_string()], "connect_timeout_ms": 250}]
    }))?;
    let reply = get_with(gw.main(), "localhost", "/", &[]).await?;
    assert_eq!(reply.status, 504, "{}", reply.body);
    let msg = reply.json()["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("did not connect within 250 ms"), "{msg}");
    drop(fillers);
    Ok(())
}

#[tokio::test]
async fn idle_upstream_connections_are_reused_then_closed() -> anyhow::Result<()> {
    let keep = Upstream::start("keep").await;
    let short = Upstream::start("short").await;
    let gw = TestGateway::start(json!({
        "workers": 1,
        "routes": [
            {"name": "keep", "match": {"path": {"prefix": "/keep"}}, "cluster": "keep"},
            {"name": "short", "cluster": "short"}
        ],
        "clusters": [
            {"name": "keep", "endpoints": [keep.endpoint()]},
            {"name": "short", "endpoints": [short.endpoint()], "idle_timeout_ms": 100}
        ]
    }))?;
    for _ in 0..3 {
        assert_eq!(get_with(gw.main(), "localhost", "/keep", &[]).await?.status, 200);
        assert_eq!(get_with(gw.main(), "localhost", "/short", &[]).await?.status, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(keep.connections(), 1, "one pooled keep-alive connection serves every request");
    assert_eq!(short.connections(), 3, "an idle connection past idle_timeout_ms is closed, not reused");
    Ok(())
}

#[tokio::test]
async fn idle_client_connections_are_closed() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "listeners": [{"name": "main", "address": "127.0.0.1:0", "idle_timeout_ms": 300, "header_timeout_ms": 300}],
        "routes": [{"name": "hi", "direct_response": {"status": 200, "body": "hi"}}]
    }))?;
    // Idle after a request: closed after the idle timeout.
    let mut conn = tokio::net::TcpStream::connect(gw.main()).await?;
    conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await?;
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf)).await?;
    assert_eq!(closed?, 0, "the server closes an idle keep-alive connection");
    // Headers never finished: closed after the header timeout.
    let mut slow = tokio::net::TcpStream::connect(gw.main()).await?;
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await?;
    let closed = tokio::time::timeout(Duration::from_secs(3), slow.read(&mut buf)).await?;
    let n = closed.unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "unexpected answer to unfinished headers: {text}");
    Ok(())
}
