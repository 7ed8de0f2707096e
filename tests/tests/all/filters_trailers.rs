//! Trailers through the filter chain (the `trailers` test filter): `on_request_trailers` in chain order and
//! `on_response_trailers` in reverse, maps 1 and 3 in each phase, trailers created in a final body callback,
//! pausing in the trailers phase, local responses there, `on_log`, and HTTP/2 (h2c, TLS) and HTTP/1.1.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use weir_tests::certs::Ca;
use weir_tests::client::{self, send, Body, Proto};
use weir_tests::filters;
use weir_tests::upstream::{ReceiverStream, Upstream};
use weir_tests::TestGateway;

fn filter(name: &str) -> Value {
    json!({"name": name, "module": filters::TRAILERS_WASM, "configuration": {"name": name, "cluster": "svc"}})
}

/// A gateway whose route `api` runs `names` (in that order) before cluster `svc` (HTTP/2 or HTTP/1.1).
fn gateway(up: &Upstream, names: &[&str], http2: bool) -> anyhow::Result<TestGateway> {
    let chain: Vec<Value> = names.iter().map(|n| filter(n)).collect();
    TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": chain}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()], "http2": http2}]
    }))
}

/// A body of one data frame followed, when `trailers` is not empty, by a trailers frame.
fn body(data: &str, trailers: &[(&str, &str)]) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
    let _ = tx.try_send(Ok(Frame::data(Bytes::from(data.to_string()))));
    if !trailers.is_empty() {
        let mut map = HeaderMap::new();
        for (k, v) in trailers {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        let _ = tx.try_send(Ok(Frame::trailers(map)));
    }
    StreamBody::new(ReceiverStream(rx)).boxed()
}

/// A request with `body` as the body.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Body, proto: &Proto) -> http::Request<Body> {
    let (parts, _) = client::request(method, "api.test", path, headers, "", proto).into_parts();
    http::Request::from_parts(parts, body)
}

/// A response read in full, trailers included.
struct Exchange {
    status: http::StatusCode,
    headers: HeaderMap,
    body: String,
    trailers: HeaderMap,
    /// When the trailers (or the end) arrived, from the request's start.
    ended_after: Duration,
}

impl Exchange {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn trailer(&self, name: &str) -> &str {
        self.trailers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn trailer_values(&self, name: &str) -> Vec<&str> {
        self.trailers.get_all(name).iter().map(|v| v.to_str().unwrap_or("")).collect()
    }
}

async fn exchange(addr: SocketAddr, proto: &Proto, req: http::Request<Body>) -> anyhow::Result<Exchange> {
    let started = Instant::now();
    let resp = send(addr, proto, req).await?;
    let (parts, body) = resp.into_parts();
    let collected = tokio::time::timeout(Duration::from_secs(10), body.collect()).await??;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Ok(Exchange {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        trailers,
        ended_after: started.elapsed(),
    })
}

const CLIENT_TRAILERS: &[(&str, &str)] = &[("x-client", "c"), ("x-replace", "original"), ("x-remove", "gone")];

#[tokio::test]
async fn request_trailers_from_an_h2c_client_reach_the_upstream_changed_by_the_filter() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a"], true)?;
    let req = request("POST", "/echo", &[], body("hello", CLIENT_TRAILERS), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["body"], "hello");
    let trailers = &echo["trailers"];
    assert_eq!(trailers["x-client"], "c", "{echo}");
    assert_eq!(trailers["x-replace"], "replaced-by-a", "replaced in on_request_trailers");
    assert!(trailers.get("x-remove").is_none(), "removed in on_request_trailers: {trailers}");
    assert_eq!(trailers["x-trailer-order"], "a", "added in on_request_trailers");
    assert_eq!(trailers["x-count-a"], "3", "num_trailers is the number of trailers");
    assert_eq!(trailers["x-body-eos-a"], "false", "the body callback before the trailers had end_of_stream = 0");
    assert_eq!(
        echo["headers"]["x-t-probe-a"], "status:2,status:2",
        "in on_request_headers both trailer maps are unavailable: BAD_ARGUMENT"
    );
    Ok(())
}

#[tokio::test]
async fn response_trailers_from_the_upstream_reach_the_client_changed_by_the_filter() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    for http2 in [true, false] {
        let gw = gateway(&up, &["a"], http2)?;
        // te: trailers, which an HTTP/1.1 upstream needs before it sends trailers.
        let req = request("GET", "/trailers", &[("te", "trailers")], body("", &[]), &Proto::H2c);
        let reply = exchange(gw.main(), &Proto::H2c, req).await?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["uri"].as_str().map(|u| u.ends_with("/trailers")), Some(true));
        assert_eq!(reply.trailer("x-up-trailer"), "up", "http2 upstream {http2}: {:?}", reply.trailers);
        assert_eq!(reply.trailer("x-replace"), "replaced-by-a");
        assert!(reply.trailers.get("x-remove").is_none(), "{:?}", reply.trailers);
        assert_eq!(reply.trailer_values("x-trailer-order"), ["a"]);
        assert_eq!(reply.trailer("x-count-a"), "3");
        assert!(
            reply.trailer("x-body-eos-a").split(',').all(|e| e == "false"),
            "every response body callback before the trailers had end_of_stream = 0: {:?}",
            reply.trailers
        );
        assert_eq!(
            reply.trailer("x-request-trailer-a"),
            "status:2",
            "a request without trailers has no map 1: BAD_ARGUMENT"
        );
        assert_eq!(reply.trailer("x-property-a"), "up", "property response.trailers.x-up-trailer");
        // x-up-trailer, x-replace, then what the filter added before reading it: x-trailer-order, x-body-eos-a,
        // x-count-a, x-request-trailer-a, x-property-a.
        assert_eq!(reply.trailer("x-property-count-a"), "7", "property response.trailers, a map");
    }
    Ok(())
}

#[tokio::test]
async fn a_chain_runs_request_trailers_in_order_and_response_trailers_in_reverse() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a", "b"], true)?;
    let req = request("POST", "/trailers", &[], body("x", CLIENT_TRAILERS), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let trailers = &reply.json()["trailers"];
    assert_eq!(trailers["x-trailer-order"], "a, b", "request trailers in chain order: {trailers}");
    assert_eq!(trailers["x-replace"], "replaced-by-b", "b saw what a left");
    assert_eq!(reply.trailer_values("x-trailer-order"), ["b", "a"], "response trailers last filter first");
    assert_eq!(reply.trailer("x-replace"), "replaced-by-a");
    assert_eq!(
        reply.trailer("x-request-trailer-b"),
        "ok:c",
        "request trailers stay readable (read-only) in the response phase"
    );
    Ok(())
}

#[tokio::test]
async fn trailers_created_in_a_final_body_callback_are_sent() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a"], true)?;
    // No trailers either way: the filter creates them in both final body callbacks.
    let req = request("POST", "/echo", &[("x-t-add", "both")], body("hi", &[]), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["body"], "hi");
    assert_eq!(
        echo["trailers"],
        json!({"x-added-a": "final-body status:2"}),
        "created on demand (the map did not exist before: BAD_ARGUMENT)"
    );
    assert_eq!(reply.trailer("x-added-a"), "final-body status:2", "{:?}", reply.trailers);
    assert_eq!(reply.trailers.len(), 1, "the filter that created them gets no trailers callback");
    Ok(())
}

#[tokio::test]
async fn filters_after_the_one_that_creates_trailers_see_end_of_stream_0_then_the_trailers() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a", "b"], true)?;
    // a creates them: on the request side b comes after it; on the response side nobody does.
    let req = request("POST", "/echo", &[("x-t-add", "a:both")], body("hi", &[]), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let trailers = &reply.json()["trailers"];
    assert_eq!(trailers["x-added-a"], "final-body status:2");
    assert_eq!(trailers["x-trailer-order"], "b", "only b got on_request_trailers: {trailers}");
    // b's callbacks: "hi" (eos 0: the client ends the stream with an empty frame), then that empty last chunk,
    // which a made not the last (eos 0 as well) by creating trailers.
    assert_eq!(trailers["x-body-eos-b"], "false,false", "b saw the last chunk with end_of_stream = 0");
    assert_eq!(trailers["x-count-b"], "1");
    assert_eq!(reply.trailer("x-added-a"), "final-body status:2");
    assert!(reply.trailers.get("x-trailer-order").is_none(), "{:?}", reply.trailers);

    // b creates them: on the response side a comes after it (reverse order).
    let req = request("POST", "/echo", &[("x-t-add", "b:both")], body("hi", &[]), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.json()["trailers"], json!({"x-added-b": "final-body status:2"}));
    assert_eq!(reply.trailer("x-added-b"), "final-body status:2", "{:?}", reply.trailers);
    assert_eq!(reply.trailer_values("x-trailer-order"), ["a"]);
    assert_eq!(reply.trailer("x-body-eos-a"), "false");
    Ok(())
}

#[tokio::test]
async fn a_pause_in_response_trailers_waits_for_a_tick_or_a_callout() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a"], true)?;
    let req = request("GET", "/trailers", &[("x-t-pause", "tick")], body("", &[]), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.trailer("x-resumed-by"), "tick", "written by the tick while paused: {:?}", reply.trailers);
    assert_eq!(reply.trailer("x-up-trailer"), "up");
    assert!(reply.ended_after >= Duration::from_millis(100), "held until resumed: {:?}", reply.ended_after);

    for http2 in [true, false] {
        let gw = gateway(&up, &["a"], http2)?;
        let requests = up.requests();
        let req =
            request("GET", "/trailers", &[("x-t-pause", "callout"), ("te", "trailers")], body("", &[]), &Proto::H2c);
        let reply = exchange(gw.main(), &Proto::H2c, req).await?;
        assert_eq!(reply.trailer("x-resumed-by"), "callout 200", "{:?}", reply.trailers);
        assert_eq!(
            reply.trailer("x-callout-trailer-echo"),
            "a",
            "the callout's trailers reached the upstream (http2 {http2}): {:?}",
            reply.trailers
        );
        assert_eq!(reply.trailer_values("x-trailer-order"), ["a"]);
        assert_eq!(up.requests(), requests + 2, "the request and the callout");
    }
    Ok(())
}

/// Reads a response to its end: `Err` when the stream did not end cleanly.
async fn read_to_end(addr: SocketAddr, req: http::Request<Body>) -> anyhow::Result<http::StatusCode> {
    let resp = send(addr, &Proto::H2c, req).await?;
    let status = resp.status();
    tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect()).await??;
    Ok(status)
}

#[tokio::test]
async fn local_responses_and_close_stream_from_the_trailers_callbacks() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a"], true)?;
    // Request trailers: the request is abandoned and the local response goes downstream.
    let headers = [("x-t-local", "request-trailers")];
    let req = request("POST", "/echo", &headers, body("x", CLIENT_TRAILERS), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 418, "{}", reply.body);
    assert_eq!(reply.body, "local from a\n");
    assert_eq!(reply.headers.get("x-local-from").map(|v| v.as_bytes()), Some(&b"a"[..]));

    // proxy_close_stream from request trailers: the request fails as from a body callback.
    let headers = [("x-t-close", "request-trailers")];
    let req = request("POST", "/echo", &headers, body("x", CLIENT_TRAILERS), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "filter_failed");
    assert!(reply.body.contains("the filter closed the stream"), "{}", reply.body);

    // Response trailers: the response has started (its headers are on their way), so the stream is reset, as
    // in Envoy; whether the client still sees the headers depends on whether they left before the reset.
    for control in [("x-t-local", "response-trailers"), ("x-t-close", "response-trailers")] {
        let req = request("GET", "/trailers", &[control], body("", &[]), &Proto::H2c);
        let err = read_to_end(gw.main(), req).await.expect_err("the stream is reset instead of ending");
        assert!(format!("{err:#}").contains("stream error received"), "{control:?}: a reset: {err:#}");
    }
    let req = request("GET", "/trailers", &[], body("", &[]), &Proto::H2c);
    assert_eq!(read_to_end(gw.main(), req).await?, 200, "the same request without either ends cleanly");
    Ok(())
}

/// What `on_log` of filter `a` stored under `key` (it runs as the response ends, so it may lag the reply).
async fn on_log_report(addr: SocketAddr, key: &str) -> anyhow::Result<Value> {
    for _ in 0..100 {
        let headers = [("x-t-fetch", format!("{key}/a"))];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply =
            client::call(addr, &Proto::H1, client::request("GET", "api.test", "/", &headers, "", &Proto::H1)).await?;
        if reply.status == 200 {
            return Ok(reply.json());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("on_log stored nothing under {key}")
}

#[tokio::test]
async fn on_log_reads_response_trailers_and_not_request_trailers() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a"], true)?;
    let req = request("POST", "/trailers", &[("x-t-log-key", "with")], body("x", CLIENT_TRAILERS), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["trailers"]["x-client"], "c", "the request had trailers");
    let report = on_log_report(gw.main(), "with").await?;
    assert_eq!(report["request_value"], "status:1", "request trailers in on_log: NOT_FOUND: {report}");
    assert_eq!(report["request_pairs"], 0, "and an empty map");
    assert_eq!(report["request_size"], "status:2", "and BAD_ARGUMENT for the size");
    assert_eq!(report["response_value"], "ok:up", "response trailers are readable");
    assert_eq!(report["response_pairs"], reply.trailers.len(), "the trailers that went downstream");

    let req = request("POST", "/echo", &[("x-t-log-key", "without")], body("x", &[]), &Proto::H2c);
    assert!(exchange(gw.main(), &Proto::H2c, req).await?.trailers.is_empty());
    let report = on_log_report(gw.main(), "without").await?;
    assert_eq!(report["response_value"], "status:1", "no response trailers: an empty map: {report}");
    assert_eq!(report["response_pairs"], 0);
    assert_eq!(report["response_size"], "ok:0");
    Ok(())
}

#[tokio::test]
async fn tls_h2_carries_trailers_both_ways() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let dir = tempfile::tempdir()?;
    let ca = Ca::new();
    let leaf = ca.leaf(dir.path(), "api", &["api.test"]);
    let gw = TestGateway::start_in(
        json!({
            "listeners": [{"name": "tls", "address": "127.0.0.1:0", "tls": {"certificates": [{"cert": leaf.cert, "key": leaf.key}]}}],
            "routes": [{"name": "api", "cluster": "svc", "filters": [filter("a"), filter("b")]}],
            "clusters": [{"name": "svc", "endpoints": [up.endpoint()], "http2": true}]
        }),
        dir,
    )?;
    let proto = Proto::Tls { server_name: "api.test".into(), roots: vec![ca.der.clone()], alpn: vec!["h2"] };
    let req = request("POST", "/trailers", &[], body("x", CLIENT_TRAILERS), &proto);
    let reply = exchange(gw.addr("tls"), &proto, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["trailers"]["x-trailer-order"], "a, b");
    assert_eq!(reply.trailer_values("x-trailer-order"), ["b", "a"]);
    assert_eq!(reply.trailer("x-up-trailer"), "up");
    Ok(())
}

#[tokio::test]
async fn http1_chunked_trailers_go_through_when_declared_and_asked_for() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a"], false)?;
    // hyper writes HTTP/1.1 trailers only when the head declares them (`trailer`), and in a response only
    // when the request had `te: trailers`; the filter declares the ones it and the upstream add.
    let declared = "x-client, x-replace, x-remove, x-up-trailer, x-trailer-order, x-count-a, x-body-eos-a";
    for te in [true, false] {
        let mut headers = vec![("trailer", "x-client, x-replace, x-remove"), ("x-t-declare", declared)];
        if te {
            headers.push(("te", "trailers"));
        }
        let req = request("POST", "/trailers", &headers, body("chunked", CLIENT_TRAILERS), &Proto::H1);
        let reply = exchange(gw.main(), &Proto::H1, req).await?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let echo = reply.json();
        assert_eq!(echo["body"], "chunked");
        let trailers = &echo["trailers"];
        assert_eq!(trailers["x-client"], "c", "te {te}: request trailers reach an HTTP/1.1 upstream: {echo}");
        assert_eq!(trailers["x-replace"], "replaced-by-a");
        assert_eq!(trailers["x-trailer-order"], "a");
        if te {
            assert_eq!(reply.trailer("x-up-trailer"), "up", "{:?}", reply.trailers);
            assert_eq!(reply.trailer("x-trailer-order"), "a");
            assert_eq!(reply.trailer("x-replace"), "replaced-by-a");
        } else {
            assert!(reply.trailers.is_empty(), "no te: trailers, no response trailers: {:?}", reply.trailers);
        }
    }
    Ok(())
}

/// A filter that buffered the body (Pause in its body callbacks) reads and rewrites it from its trailers
/// callback, as in Envoy; the filters after it get the rewritten body, then the trailers.
#[tokio::test]
async fn a_filter_holding_the_body_reads_and_rewrites_it_in_its_trailers_callback() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up, &["a", "b"], true)?;
    let req = request("POST", "/echo", &[("x-t-hold", "a:request")], body("hello", CLIENT_TRAILERS), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echo = reply.json();
    assert_eq!(echo["body"], "hello|held-by-a:5", "filter a read the 5 held bytes in on_request_trailers and appended");
    assert_eq!(echo["trailers"]["x-held-a"], "5");
    assert_eq!(echo["trailers"]["x-body-eos-b"], "false", "b saw the released body with end_of_stream = 0: {echo}");
    assert!(echo["trailers"].get("x-held-b").is_none(), "b did not hold");

    let req =
        request("GET", "/trailers", &[("te", "trailers"), ("x-t-hold", "b:response")], body("", &[]), &Proto::H2c);
    let reply = exchange(gw.main(), &Proto::H2c, req).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let held: usize = reply.trailer("x-held-b").parse().expect("x-held-b is the held length");
    let (echo, tail) = reply.body.split_at(held);
    assert_eq!(tail, format!("|held-by-b:{held}"), "the whole streamed response body was held, then rewritten");
    assert!(serde_json::from_str::<Value>(echo).is_ok(), "the held part is the upstream's JSON: {echo}");
    assert_eq!(reply.trailer("x-up-trailer"), "up");
    Ok(())
}
