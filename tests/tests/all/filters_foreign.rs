//! Foreign functions (`compress`, `uncompress`, `clear_route_cache`, unknown names), the request, response,
//! upstream and connection properties, filter metrics labelled with their module, and capability
//! restriction, through real requests with the `foreign` test filter (crates.io SDK, unmodified).

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use weir_tests::certs::Ca;
use weir_tests::client::{call, get_with, request, Proto};
use weir_tests::filters;
use weir_tests::upstream::{ReceiverStream, Upstream};
use weir_tests::TestGateway;

fn foreign() -> Value {
    json!({"name": "foreign", "module": filters::FOREIGN_WASM})
}

#[tokio::test]
async fn compress_uncompress_and_unknown_foreign_functions() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "routes": [{"name": "f", "direct_response": {"status": 204}, "filters": [foreign()]}]
    }))?;
    let data = "hello hello hello hello hello hello hello hello";
    let reply = get_with(gw.main(), "f.test", "/compress", &[("x-data", data)]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, data), "compress then uncompress round-trips");
    assert!(reply.header("x-zlib-header").starts_with("78"), "a zlib stream: {}", reply.header("x-zlib-header"));
    let packed: usize = reply.header("x-compressed-len").parse()?;
    assert!(packed < data.len(), "repetition compresses: {packed} bytes for {}", data.len());

    let reply = get_with(gw.main(), "f.test", "/uncompress-garbage", &[]).await?;
    assert_eq!(reply.header("x-status"), "3", "SERIALIZATION_FAILURE, as Envoy answers");

    let reply = get_with(gw.main(), "f.test", "/unknown", &[]).await?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-declare-property"), "1", "an Envoy function Weir does not serve: NOT_FOUND");
    assert_eq!(reply.header("x-no-such-function"), "1", "NOT_FOUND");
    Ok(())
}

#[tokio::test]
async fn clear_route_cache_sends_the_request_where_the_new_headers_match() -> anyhow::Result<()> {
    let (a, b, c) = (Upstream::start("a").await, Upstream::start("b").await, Upstream::start("c").await);
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "b", "match": {"path": {"prefix": "/b"}}, "cluster": "b", "prefix_rewrite": "/rewritten",
             "request_headers_to_add": {"x-route": "b"}},
            {"name": "gold", "match": {"headers": [{"name": "x-tenant", "value": "gold"}]}, "cluster": "c"},
            {"name": "direct", "match": {"path": {"prefix": "/d"}}, "direct_response": {"status": 418, "body": "teapot"},
             "filters": [foreign()]},
            {"name": "a", "match": {"path": {"prefix": "/a"}}, "cluster": "a", "filters": [foreign()]}
        ],
        "clusters": [
            {"name": "a", "endpoints": [a.endpoint()]},
            {"name": "b", "endpoints": [b.endpoint()]},
            {"name": "c", "endpoints": [c.endpoint()]}
        ]
    }))?;
    let addr = gw.main();

    // A :path rewrite alone leaves the request on the route chosen first.
    let reply = get_with(addr, "shop.test", "/a/x?q=1", &[("x-set-path", "/b/y?q=2")]).await?;
    let echo = reply.json();
    assert_eq!((echo["upstream"].as_str(), echo["uri"].as_str()), (Some("a"), Some("/b/y?q=2")));
    assert!(echo["headers"].get("x-route").is_none(), "route b's header rules did not apply: {echo}");

    // With clear_route_cache, the route /b/y matches serves it: its cluster, prefix rewrite and header rules.
    let clear = ("x-clear-route-cache", "1");
    let reply = get_with(addr, "shop.test", "/a/x?q=1", &[("x-set-path", "/b/y?q=2"), clear]).await?;
    let echo = reply.json();
    assert_eq!((echo["upstream"].as_str(), echo["uri"].as_str()), (Some("b"), Some("/rewritten/y?q=2")), "{echo}");
    assert_eq!(echo["headers"]["x-route"], "b");
    assert_eq!(echo["headers"]["x-clear-status"], "ok");
    assert_eq!(reply.header("x-route-name"), "b", "xds.route_name names the new route");
    assert_eq!(a.requests(), 1, "only the request without clear_route_cache reached a");

    // A header the filter sets can select the route too.
    let reply = get_with(addr, "shop.test", "/a/x", &[("x-set-tenant", "gold"), clear]).await?;
    assert_eq!(reply.json()["upstream"], "c");
    let reply = get_with(addr, "shop.test", "/a/x", &[("x-set-tenant", "gold")]).await?;
    assert_eq!(reply.json()["upstream"], "a", "without the call the first route stands");

    // Re-routed to a direct response; to no route at all.
    let reply = get_with(addr, "shop.test", "/a/x", &[("x-set-path", "/d/q"), clear]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (418, "teapot"));
    assert_eq!(reply.header("x-route-name"), "direct");
    let reply = get_with(addr, "shop.test", "/a/x", &[("x-set-path", "/nowhere"), clear]).await?;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "route_not_found");

    // A route that answers by itself can hand the request to one that proxies.
    let reply = get_with(addr, "shop.test", "/d/x", &[("x-set-path", "/b/z"), clear]).await?;
    let echo = reply.json();
    assert_eq!((echo["upstream"].as_str(), echo["uri"].as_str()), (Some("b"), Some("/rewritten/z")), "{echo}");
    assert!(echo["headers"]["x-forwarded-for"].is_string(), "the gateway's request policy ran: {echo}");
    let reply = get_with(addr, "shop.test", "/d/x", &[("x-set-path", "/b/z")]).await?;
    assert_eq!(reply.status, 418);
    assert_eq!((a.requests(), b.requests(), c.requests()), (2, 2, 1));
    Ok(())
}

/// The properties the filter stored in `on_log` for request `id`, once they are there.
async fn log_report(gw: &TestGateway, id: &str) -> anyhow::Result<Value> {
    for _ in 0..100 {
        let reply = get_with(gw.main(), "props.test", "/report", &[("x-report-id", id)]).await?;
        if reply.status == 200 {
            return Ok(reply.json());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("no on_log report for request {id}")
}

fn json_header(v: Option<&str>, name: &str) -> Value {
    serde_json::from_str(v.unwrap_or_else(|| panic!("{name} missing"))).expect("JSON")
}

#[tokio::test]
async fn properties_of_requests_responses_upstreams_and_connections() -> anyhow::Result<()> {
    let svc = Upstream::start("svc").await;
    let dir = tempfile::tempdir()?;
    let ca = Ca::new();
    let leaf = ca.leaf(dir.path(), "props", &["props.test"]);
    let gw = TestGateway::start_in(
        json!({
            "listeners": [
                {"name": "main", "address": "127.0.0.1:0"},
                {"name": "tls", "address": "127.0.0.1:0", "tls": {"certificates": [{"cert": leaf.cert, "key": leaf.key}]}}
            ],
            "routes": [
                {"name": "report", "match": {"path": {"prefix": "/report"}}, "direct_response": {"status": 204},
                 "filters": [foreign()]},
                {"name": "p", "cluster": "svc", "filters": [foreign()]}
            ],
            "clusters": [{"name": "svc", "endpoints": [svc.endpoint()]}]
        }),
        dir,
    )?;
    let headers = [("x-props", "1"), ("referer", "https://ref.test/"), ("user-agent", "weir-test/1")];
    let reply =
        call(gw.main(), &Proto::H1, request("POST", "props.test", "/p", &headers, "hello world", &Proto::H1)).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    let id = echo["headers"]["x-request-id"].as_str().unwrap_or_default().to_string();
    let req = json_header(echo["headers"]["x-props-request"].as_str(), "x-props-request");
    let headers_bytes = req["request.headers_bytes"].as_i64().unwrap_or_default();
    assert!(headers_bytes > 50, "{req}");
    for (name, want) in [
        ("request.size", json!(11)),
        ("request.total_size", json!(headers_bytes)),
        ("request.duration", Value::Null),
        ("request.referer", json!("https://ref.test/")),
        ("request.useragent", json!("weir-test/1")),
        ("request.id", json!(id)),
        ("response.code_details", Value::Null),
        ("response.size", Value::Null),
        ("response.flags", json!(0)),
        ("upstream.address", Value::Null),
        ("upstream.port", Value::Null),
        ("connection.requested_server_name", Value::Null),
        ("connection.tls_version", Value::Null),
        ("connection.mtls", json!(false)),
    ] {
        assert_eq!(req[name], want, "request phase: {name} in {req}");
    }
    let resp = json_header(Some(reply.header("x-props-response")), "x-props-response");
    for (name, want) in [
        ("upstream.address", json!(svc.endpoint())),
        ("upstream.port", json!(svc.addr.port())),
        ("response.code", json!(200)),
        ("response.code_details", json!("via_upstream")),
        ("response.flags", json!(0)),
        ("request.duration", Value::Null),
    ] {
        assert_eq!(resp[name], want, "response phase: {name} in {resp}");
    }
    assert!(resp["response.headers_bytes"].as_i64().unwrap_or_default() > 20, "{resp}");
    let log = log_report(&gw, &id).await?;
    assert!(log["request.duration"].as_i64().unwrap_or_default() > 0, "on_log: {log}");
    assert_eq!(log["request.size"], 11);
    assert!(log["request.total_size"].as_i64().unwrap_or_default() >= 11 + headers_bytes, "{log}");
    assert_eq!(log["response.size"], reply.body.len(), "the body bytes sent: {log}");
    let total = log["response.headers_bytes"].as_i64().unwrap_or_default() + reply.body.len() as i64;
    assert_eq!(log["response.total_size"], total, "{log}");
    assert_eq!(
        (log["upstream.address"].as_str(), log["response.code_details"].as_str()),
        (Some(svc.endpoint().as_str()), Some("via_upstream"))
    );

    // A body without content-length: request.size counts the bytes as they arrive.
    let addr = gw.main();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    let body = StreamBody::new(ReceiverStream(rx)).boxed();
    let chunked = http::Request::post("/p").header("host", "props.test").header("x-props", "1").body(body)?;
    let sending = tokio::spawn(async move { call(addr, &Proto::H1, chunked).await });
    for chunk in ["abc", "defg"] {
        tx.send(Ok(Frame::data(Bytes::from(chunk)))).await?;
    }
    drop(tx);
    let echo = sending.await??.json();
    assert_eq!(echo["body"], "abcdefg");
    let req = json_header(echo["headers"]["x-props-request"].as_str(), "x-props-request");
    assert_eq!(req["request.size"], 0, "no content-length, no byte received before the request headers: {req}");
    let id = echo["headers"]["x-request-id"].as_str().unwrap_or_default().to_string();
    let log = log_report(&gw, &id).await?;
    assert_eq!(log["request.size"], 7, "every byte counted by on_log: {log}");

    // Over TLS: the SNI name and the TLS version.
    let proto = Proto::Tls { server_name: "props.test".into(), roots: vec![ca.der.clone()], alpn: vec!["http/1.1"] };
    let reply =
        call(gw.addr("tls"), &proto, request("GET", "props.test", "/p", &[("x-props", "1")], "", &proto)).await?;
    let req = json_header(reply.json()["headers"]["x-props-request"].as_str(), "x-props-request");
    assert_eq!(req["connection.requested_server_name"], "props.test", "{req}");
    assert_eq!(req["connection.tls_version"], "TLSv1.3");
    assert_eq!(req["connection.mtls"], false, "Weir asks clients for no certificate");
    Ok(())
}

#[tokio::test]
async fn filter_metrics_are_labelled_with_the_defining_module() -> anyhow::Result<()> {
    let gw = TestGateway::start(json!({
        "workers": 1,
        "routes": [{"name": "state", "direct_response": {"status": 204},
                    "filters": [{"module": filters::STATE_WASM}]}]
    }))?;
    assert_eq!(get_with(gw.main(), "shop.test", "/x", &[]).await?.status, 200);
    let line = r#"weir_filter_counter_total{filter="state",name="test_requests_total"} 1"#;
    let mut text = String::new();
    for _ in 0..100 {
        text = get_with(gw.admin(), "localhost", "/metrics", &[]).await?.body;
        if text.lines().any(|l| l == line) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("/metrics never showed {line}:\n{text}")
}

#[tokio::test]
async fn capabilities_stub_denied_hostcalls_and_hide_denied_callbacks() -> anyhow::Result<()> {
    use weir::abi::hostcalls::capabilities::{CALLBACKS, HOSTCALLS, WASI};
    let svc = Upstream::start("svc").await;
    let denied = ["proxy_get_property", "proxy_on_response_headers"];
    let allowed: Vec<&str> =
        HOSTCALLS.iter().chain(WASI).chain(CALLBACKS).copied().filter(|c| !denied.contains(c)).collect();
    // The same module on two routes, restricted on one: the two attachments get VMs of their own.
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "restricted", "match": {"path": {"prefix": "/r"}}, "cluster": "svc",
             "filters": [{"module": filters::FOREIGN_WASM, "capabilities": allowed}]},
            {"name": "open", "cluster": "svc", "filters": [foreign()]}
        ],
        "clusters": [{"name": "svc", "endpoints": [svc.endpoint()]}]
    }))?;
    let reply = get_with(gw.main(), "caps.test", "/r", &[("x-caps", "1")]).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["headers"]["x-get-property-status"], "10", "a denied hostcall answers INTERNAL_FAILURE");
    assert_eq!(reply.header("x-response-headers-called"), "", "a denied callback is never called");
    let reply = get_with(gw.main(), "caps.test", "/o", &[("x-caps", "1")]).await?;
    assert_eq!(reply.json()["headers"]["x-get-property-status"], "ok");
    assert_eq!(reply.header("x-response-headers-called"), "yes");
    Ok(())
}

#[tokio::test]
async fn bad_capability_lists_are_configuration_errors() {
    let config = |capabilities: Value| {
        json!({"routes": [{"name": "r", "direct_response": {"status": 204},
                           "filters": [{"module": filters::FOREIGN_WASM, "capabilities": capabilities}]}]})
    };
    let at = "$.routes[0].filters[0].capabilities";
    for (capabilities, want) in [
        (
            json!(["proxy_log", "proxy_lgo"]),
            format!(r#"{at}[1]: unknown capability "proxy_lgo"; did you mean "proxy_log"?"#),
        ),
        (json!("proxy_log"), format!("{at}: expected an array, found a string")),
        (json!(["fd_write", "fd_write"]), format!(r#"{at}[1]: "fd_write" is listed twice"#)),
    ] {
        let err = TestGateway::start(config(capabilities)).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, format!("test.json: 1 error in the configuration\n  test.json: {want}"));
    }
}

/// `environment_variables` (Envoy's `vm_config.environment_variables`): the VM's WASI environment holds the
/// configured pairs and the named host variables, nothing else; attachments with different environments do
/// not share a VM.
#[tokio::test]
async fn the_vm_environment_holds_the_configured_variables_only() -> anyhow::Result<()> {
    let home = std::env::var("HOME").unwrap_or_default();
    assert!(!home.is_empty(), "the test process has HOME");
    let mut with_env = foreign();
    with_env["environment_variables"] = json!({
        "key_values": {"TENANT": "acme", "EMPTY": ""},
        "host_env_keys": ["HOME", "WEIR_TEST_VARIABLE_THAT_IS_NOT_SET"]
    });
    let gw = TestGateway::start(json!({
        "routes": [
            {"name": "a", "match": {"headers": [{"name": "x-route", "value": "a"}]}, "direct_response": {"status": 204}, "filters": [with_env]},
            {"name": "b", "direct_response": {"status": 204}, "filters": [foreign()]}
        ]
    }))?;
    let reply = get_with(gw.main(), "f.test", "/env", &[("x-route", "a")]).await?;
    assert_eq!(reply.body, format!("EMPTY=\nHOME={home}\nTENANT=acme\n"), "sorted; the unset host key left out");
    let reply = get_with(gw.main(), "f.test", "/env", &[]).await?;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, ""), "no environment configured: an empty one");

    let mut bad = foreign();
    bad["environment_variables"] =
        json!({"key_values": {"A=B": "x", "OK": 1}, "host_env_keys": ["OK2", ""], "other": true});
    let text = json!({"listeners": [{"name": "m", "address": "127.0.0.1:0"}], "routes": [{"name": "r", "direct_response": {"status": 204}, "filters": [bad]}]}).to_string();
    let err =
        weir::config::Config::from_json(&text, "t.json", std::path::Path::new("")).expect_err("invalid").to_string();
    for needle in [
        "$.routes[0].filters[0].environment_variables.key_values.A=B: a variable name must be non-empty and hold no '=' or NUL",
        "$.routes[0].filters[0].environment_variables.key_values.OK: expected a string, found a number",
        "$.routes[0].filters[0].environment_variables.host_env_keys[1]: a variable name must be non-empty and hold no '=' or NUL",
        "$.routes[0].filters[0].environment_variables.other: unknown field \"other\"",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    Ok(())
}
