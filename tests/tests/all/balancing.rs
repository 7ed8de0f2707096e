//! Load-balancing policies through the real data plane. One worker, so one balancer sees every request.

use serde_json::json;
use std::collections::BTreeMap;
use weir_tests::client::get_with;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

async fn gateway(ups: &[&Upstream], weights: &[u32], policy: serde_json::Value) -> anyhow::Result<TestGateway> {
    let endpoints: Vec<_> =
        ups.iter().zip(weights).map(|(u, w)| json!({"address": u.endpoint(), "weight": w})).collect();
    let mut cluster = json!({"name": "pool", "endpoints": endpoints});
    for (k, v) in policy.as_object().expect("object") {
        cluster[k] = v.clone();
    }
    TestGateway::start(json!({
        "workers": 1,
        "routes": [{"name": "all", "cluster": "pool"}],
        "clusters": [cluster]
    }))
}

async fn hits(gw: &TestGateway, n: usize, headers: &[(&str, &str)]) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let reply = get_with(gw.main(), "localhost", "/", headers).await?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        *out.entry(reply.header("x-upstream").to_string()).or_default() += 1;
    }
    Ok(out)
}

#[tokio::test]
async fn weighted_round_robin_follows_weights_exactly() -> anyhow::Result<()> {
    let (a, b, c) = (Upstream::start("a").await, Upstream::start("b").await, Upstream::start("c").await);
    let gw = gateway(&[&a, &b, &c], &[2, 1, 1], json!({"lb_policy": "round_robin"})).await?;
    let got = hits(&gw, 40, &[]).await?;
    assert_eq!(got, BTreeMap::from([("a".into(), 20), ("b".into(), 10), ("c".into(), 10)]));
    Ok(())
}

#[tokio::test]
async fn least_request_avoids_the_busy_endpoint() -> anyhow::Result<()> {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let gw = gateway(&[&a, &b], &[1, 1], json!({"lb_policy": "least_request"})).await?;
    let addr = gw.main();
    // Two slow requests in flight: one on each endpoint.
    let slow1 = tokio::spawn(async move { get_with(addr, "localhost", "/slow/1500", &[]).await });
    let slow2 = tokio::spawn(async move { get_with(addr, "localhost", "/slow/300", &[]).await });
    // Wait until both endpoints have their slow request.
    while a.requests() + b.requests() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!((a.requests(), b.requests()), (1, 1), "the two slow requests spread over both endpoints");
    let short = slow2.await??;
    let busy = if short.header("x-upstream") == "a" { "b" } else { "a" };
    // Only the 1500 ms request is still in flight: every quick request goes to the other endpoint.
    let got = hits(&gw, 6, &[]).await?;
    let free = if busy == "a" { "b" } else { "a" };
    assert_eq!(got, BTreeMap::from([(free.to_string(), 6)]), "busy endpoint was {busy}");
    assert_eq!(slow1.await??.header("x-upstream"), busy);
    Ok(())
}

#[tokio::test]
async fn consistent_hash_on_a_header_is_sticky_and_spreads_keys() -> anyhow::Result<()> {
    let (a, b, c) = (Upstream::start("a").await, Upstream::start("b").await, Upstream::start("c").await);
    let gw =
        gateway(&[&a, &b, &c], &[1, 1, 1], json!({"lb_policy": "consistent_hash", "hash_on": {"header": "x-user"}}))
            .await?;
    let mut owners = BTreeMap::new();
    for user in 0..30 {
        let id = format!("user-{user}");
        let got = hits(&gw, 4, &[("x-user", &id)]).await?;
        assert_eq!(got.len(), 1, "{id} was spread over {got:?}");
        *owners.entry(got.into_keys().next().expect("one")).or_insert(0) += 1;
    }
    assert_eq!(owners.len(), 3, "30 users should land on all 3 endpoints: {owners:?}");
    Ok(())
}

#[tokio::test]
async fn consistent_hash_on_client_ip_is_sticky() -> anyhow::Result<()> {
    let (a, b, c) = (Upstream::start("a").await, Upstream::start("b").await, Upstream::start("c").await);
    let gw =
        gateway(&[&a, &b, &c], &[1, 1, 1], json!({"lb_policy": "consistent_hash", "hash_on": "client_ip"})).await?;
    let got = hits(&gw, 12, &[]).await?;
    assert_eq!(got.len(), 1, "one client address, one endpoint: {got:?}");
    Ok(())
}
