//! Every matcher, first-match order, the 404 body, rewrites, header policy and direct responses.

use serde_json::json;
use weir_tests::client::get_with;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

/// A route answering with its own name, so a test sees which route matched.
fn named(name: &str, matcher: serde_json::Value) -> serde_json::Value {
    json!({"name": name, "match": matcher, "direct_response": {"status": 200, "body": name}})
}

#[tokio::test]
async fn every_matcher_and_first_match_wins() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "routes": [
            named("exact-host", json!({"host": "api.example.com", "path": {"prefix": "/"}})),
            named("wildcard-host", json!({"host": "*.example.com"})),
            named("exact-path", json!({"path": {"exact": "/exact"}})),
            named("regex-path", json!({"path": {"regex": "/users/[0-9]+/orders"}})),
            named("method", json!({"path": {"prefix": "/m"}, "methods": ["DELETE"]})),
            named("header-value", json!({"path": {"prefix": "/h"}, "headers": [{"name": "x-env", "value": "canary"}]})),
            named("header-present", json!({"path": {"prefix": "/h"}, "headers": [{"name": "x-debug"}]})),
            named("header-absent", json!({"path": {"prefix": "/h"}, "headers": [{"name": "x-block", "present": false}]})),
            named("prefix", json!({"path": {"prefix": "/p"}})),
            named("shadowed", json!({"path": {"prefix": "/prefix-too"}})),
        ]
    }))?;
    let addr = gw.main();
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
    let cases: &[Case] = &[
        // (method, host, path, headers, expected route or None for 404)
        ("GET", "api.example.com", "/anything", &[], Some("exact-host")),
        ("GET", "API.Example.com:8080", "/x", &[], Some("exact-host")),
        ("GET", "www.example.com", "/x", &[], Some("wildcard-host")),
        ("GET", "a.b.example.com", "/x", &[], Some("wildcard-host")),
        ("GET", "example.com", "/exact", &[], Some("exact-path")),
        ("GET", "localhost", "/exact", &[], Some("exact-path")),
        ("GET", "localhost", "/exact/more", &[], None),
        ("GET", "localhost", "/exact?q=1", &[], Some("exact-path")),
        ("GET", "localhost", "/users/42/orders", &[], Some("regex-path")),
        ("GET", "localhost", "/users/x/orders", &[], None),
        ("GET", "localhost", "/users/42/orders/7", &[], None),
        ("DELETE", "localhost", "/m", &[], Some("method")),
        ("GET", "localhost", "/m", &[], None),
        ("GET", "localhost", "/h", &[("x-env", "canary")], Some("header-value")),
        ("GET", "localhost", "/h", &[("x-env", "prod"), ("x-debug", "1")], Some("header-present")),
        ("GET", "localhost", "/h", &[("x-env", "prod")], Some("header-absent")),
        ("GET", "localhost", "/h", &[("x-block", "1")], None),
        ("GET", "localhost", "/prefix-too", &[], Some("prefix")),
        ("GET", "localhost", "/nothing", &[], None),
    ];
    for (method, host, path, headers, want) in cases {
        let req = weir_tests::client::request(method, host, path, headers, "", &weir_tests::client::Proto::H1);
        let reply = weir_tests::client::call(addr, &weir_tests::client::Proto::H1, req).await?;
        match want {
            Some(route) => {
                assert_eq!(reply.status, 200, "{method} {host}{path} {headers:?}: {}", reply.body);
                assert_eq!(reply.body, *route, "{method} {host}{path} {headers:?}");
            }
            None => {
                assert_eq!(reply.status, 404, "{method} {host}{path} {headers:?} matched {}", reply.body);
                let body = reply.json();
                assert_eq!(body["error"]["code"], "route_not_found");
                assert_eq!(body["error"]["status"], 404);
                assert_eq!(reply.header("content-type"), "application/json");
                assert_eq!(body["error"]["request_id"], reply.header("x-request-id"));
            }
        }
    }
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn direct_response_sets_status_headers_and_body() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "routes": [{"name": "teapot", "match": {"path": {"exact": "/tea"}},
                    "direct_response": {"status": 418, "headers": {"x-kind": "earl-grey", "content-type": "text/plain"}, "body": "short and stout\n"}}]
    }))?;
    let reply = get_with(gw.main(), "localhost", "/tea", &[]).await?;
    assert_eq!(reply.status, 418);
    assert_eq!(reply.header("x-kind"), "earl-grey");
    assert_eq!(reply.header("content-type"), "text/plain");
    assert_eq!(reply.header("content-length"), "16");
    assert_eq!(reply.body, "short and stout\n");
    Ok(())
}

#[tokio::test]
async fn prefix_rewrite_keeps_the_query_and_header_policy_applies() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "api", "match": {"path": {"prefix": "/api/v1"}}, "cluster": "svc",
             "prefix_rewrite": "/internal",
             "request_headers_to_add": {"x-team": "payments", "x-replaced": "by-gateway"},
             "request_headers_to_remove": ["x-secret"]},
            {"name": "root", "match": {"path": {"prefix": "/root/"}}, "cluster": "svc", "prefix_rewrite": "/",
             "host_rewrite": "svc.internal"}
        ],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))?;
    let reply = get_with(
        gw.main(),
        "shop.test",
        "/api/v1/orders?id=7&x=y",
        &[("x-secret", "s3cr3t"), ("x-replaced", "by-client"), ("x-kept", "yes")],
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["uri"], "/internal/orders?id=7&x=y");
    assert_eq!(echo["headers"]["x-team"], "payments");
    assert_eq!(echo["headers"]["x-replaced"], "by-gateway");
    assert_eq!(echo["headers"]["x-kept"], "yes");
    assert!(echo["headers"].get("x-secret").is_none(), "x-secret reached the upstream: {echo}");
    assert_eq!(echo["headers"]["host"], "shop.test", "the client's Host is kept by default");

    let echo = get_with(gw.main(), "shop.test", "/root/a/b", &[]).await?.json();
    assert_eq!(echo["uri"], "/a/b");
    assert_eq!(echo["headers"]["host"], "svc.internal");
    Ok(())
}
