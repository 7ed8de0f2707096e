//! The admin listener: health, readiness, metrics, and the bearer token on /api/.

use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use weir_tests::client::get_with;
use weir_tests::TestGateway;

#[tokio::test]
async fn health_readiness_and_metrics() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "routes": [{"name": "hello", "direct_response": {"status": 200, "body": "hi"}}]
    }))?;
    let admin = gw.admin();
    assert_eq!(get_with(admin, "localhost", "/healthz", &[]).await?.json(), json!({"status": "ok"}));
    // Readiness comes once both workers accept.
    let mut ready = get_with(admin, "localhost", "/readyz", &[]).await?;
    for _ in 0..100 {
        if ready.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ready = get_with(admin, "localhost", "/readyz", &[]).await?;
    }
    assert_eq!((ready.status.as_u16(), ready.json()), (200, json!({"status": "ready"})));
    for _ in 0..5 {
        assert_eq!(get_with(gw.main(), "localhost", "/", &[]).await?.status, 200);
    }
    let metrics = get_with(admin, "localhost", "/metrics", &[]).await?;
    assert!(metrics.header("content-type").starts_with("application/openmetrics-text"));
    let body = metrics.body;
    let sum = |prefix: &str| -> f64 {
        body.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(sum("weir_requests_total{route=\"hello\",status_class=\"2xx\""), 5.0, "{body}");
    assert_eq!(sum("weir_request_duration_seconds_count{route=\"hello\""), 5.0, "{body}");
    assert_eq!(sum("weir_connections_total{listener=\"main\""), 5.0, "{body}");
    assert!(body.contains("weir_open_connections{listener=\"main\",worker=\"1\"}"), "per worker: {body}");
    assert!(body.contains("# TYPE weir_upstream_timeouts counter"), "{body}");
    assert!(body.ends_with("# EOF\n"));
    Ok(())
}

#[tokio::test]
async fn api_requires_the_bearer_token_which_is_generated_with_mode_0600() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "routes": [{"name": "hello", "direct_response": {"status": 200, "body": "hi"}}]
    }))?;
    let token_file = gw.dir.path().join("data").join("admin-token");
    let token = std::fs::read_to_string(&token_file)?.trim().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(std::fs::metadata(&token_file)?.permissions().mode() & 0o777, 0o600);
    assert_eq!(token, gw.gateway().admin_token());

    let admin = gw.admin();
    for auth in [None, Some("Bearer wrong-token-wrong-token-wrong-token-wrong-token-wrong-tok"), Some(token.as_str())] {
        let headers: Vec<(&str, String)> = match auth {
            Some(t) if !t.starts_with("Bearer") => vec![("authorization", format!("Bearer {t}"))],
            Some(t) => vec![("authorization", t.to_string())],
            None => vec![],
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = get_with(admin, "localhost", "/api/v1/config", &headers).await?;
        if auth == Some(token.as_str()) {
            assert_eq!(reply.status, 200, "{}", reply.body);
            let cfg = reply.json();
            assert_eq!((&cfg["routes"][0]["id"], &cfg["routes"][0]["source"]), (&json!("hello"), &json!("file")));
            assert_eq!(cfg["listeners"][0]["address"], gw.main().to_string());
        } else {
            assert_eq!(reply.status, 401, "{auth:?}");
            assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"weir-admin\"");
            assert_eq!(reply.json()["error"]["code"], "unauthorized");
        }
    }
    Ok(())
}

#[tokio::test]
async fn configured_token_is_used_and_nothing_is_written() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "admin": {"address": "127.0.0.1:0", "token": "configured-token-0123456789"},
        "routes": [{"name": "hello", "direct_response": {"status": 200, "body": "hi"}}]
    }))?;
    assert!(!gw.dir.path().join("data").join("admin-token").exists());
    let ok =
        get_with(gw.admin(), "localhost", "/api/v1/config", &[("authorization", "Bearer configured-token-0123456789")])
            .await?;
    assert_eq!(ok.status, 200);
    Ok(())
}
