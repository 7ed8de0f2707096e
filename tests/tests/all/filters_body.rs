//! Body callbacks: a filter that holds the request body until its end and rewrites it, and appends to the
//! response body at its end, while a streamed response still passes chunk by chunk.

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::json;
use std::time::Duration;
use weir_tests::client::{call, request, send, Proto};
use weir_tests::filters;
use weir_tests::upstream::Upstream;
use weir_tests::TestGateway;

fn gateway(up: &Upstream) -> anyhow::Result<TestGateway> {
    TestGateway::start(json!({
        "routes": [{"name": "api", "cluster": "svc", "filters": [{"name": "body", "module": filters::BODY_WASM}]}],
        "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]
    }))
}

#[tokio::test]
async fn the_request_body_is_rewritten_and_the_response_body_extended() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let gw = gateway(&up)?;
    for proto in [Proto::H1, Proto::H2c] {
        let reply =
            call(gw.main(), &proto, request("POST", "api.test", "/echo", &[], "hello wasm body", &proto)).await?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json_part =
            reply.body.strip_suffix("[wasm-end]").unwrap_or_else(|| panic!("no [wasm-end]: {}", reply.body));
        let echo: serde_json::Value = serde_json::from_str(json_part)?;
        assert_eq!(echo["body"], "HELLO WASM BODY", "the filter held the whole body and replaced it");
        assert!(echo["headers"].get("content-length").is_none(), "the filter removed content-length: {echo}");
    }
    Ok(())
}

#[tokio::test]
async fn a_streamed_response_still_arrives_chunk_by_chunk_through_the_filter() -> anyhow::Result<()> {
    let up = Upstream::start("llm").await;
    let gw = gateway(&up)?;
    let req = request("GET", "localhost", "/sse", &[], "", &Proto::H1);
    up.release();
    let resp = send(gw.main(), &Proto::H1, req).await?;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut last = Vec::new();
    for i in 1..=3 {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .map_err(|_| anyhow::anyhow!("event {i} did not arrive: the filter chain buffers"))?
            .expect("a frame")?;
        let data = frame.into_data().expect("data");
        let event = format!("id: {i}\ndata: {{\"n\":{i}}}\n\n");
        if i < 3 {
            assert_eq!(data, Bytes::from(event));
            up.release();
        } else {
            // The upstream's end may come with the last event (then the filter appends in the same callback).
            assert!(data.starts_with(event.as_bytes()), "event 3 arrived alone or with the end: {data:?}");
            last.extend_from_slice(&data);
        }
    }
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), body.frame()).await? {
        if let Ok(data) = frame?.into_data() {
            last.extend_from_slice(&data);
        }
    }
    assert_eq!(
        last, b"id: 3\ndata: {\"n\":3}\n\n[wasm-end]",
        "the filter's end-of-stream callback appended after the last event"
    );
    Ok(())
}

/// What `weir.declare_stream_needs` takes away, route by route: the `body` filter uppercases request bodies and
/// appends `[wasm-end]` to responses in its body callbacks, and counts `on_log`, `on_done` and whether `on_log`
/// could still read the request's `:path`.
#[tokio::test]
async fn declared_stream_needs_skip_exactly_what_they_name() -> anyhow::Result<()> {
    let up = Upstream::start("svc").await;
    let none = json!({"request_body": false, "response_body": false, "log": false, "done": false,
                      "headers_after_phase": false});
    // (route, needs, request body uppercased, `[wasm-end]` appended, on_log runs, on_done runs, :path read in on_log)
    let table = [
        ("none", Some(none), false, false, false, false, false),
        ("all", None, true, true, true, true, true),
        ("declared-all", Some(json!({})), true, true, true, true, true),
        ("noresp", Some(json!({"response_body": false})), true, false, true, true, true),
        ("noreq", Some(json!({"request_body": false})), false, true, true, true, true),
        ("nolog", Some(json!({"log": false, "done": false})), true, true, false, false, false),
        ("nolater", Some(json!({"headers_after_phase": false})), true, true, true, true, false),
    ];
    let routes: Vec<serde_json::Value> = table
        .iter()
        .map(|(route, needs, ..)| {
            let mut config = json!({"counter": format!("needs_{}", route.replace('-', "_"))});
            if let Some(needs) = needs {
                config["needs"] = needs.clone();
            }
            json!({"name": route, "match": {"path": {"prefix": format!("/{route}/")}}, "cluster": "svc",
                   "filters": [{"name": "body", "module": filters::BODY_WASM, "configuration": config}]})
        })
        .collect();
    let gw =
        TestGateway::start(json!({"routes": routes, "clusters": [{"name": "svc", "endpoints": [up.endpoint()]}]}))?;
    const N: u64 = 3;
    for (route, _, upper, end, ..) in &table {
        for _ in 0..N {
            let path = format!("/{route}/echo");
            let reply =
                call(gw.main(), &Proto::H1, request("POST", "api.test", &path, &[], "hello body", &Proto::H1)).await?;
            assert_eq!(reply.status, 200, "{route}: {}", reply.body);
            let (json_part, ended) = match reply.body.strip_suffix("[wasm-end]") {
                Some(part) => (part, true),
                None => (reply.body.as_str(), false),
            };
            assert_eq!(ended, *end, "{route}: response body callbacks ran: {}", reply.body);
            let echo: serde_json::Value = serde_json::from_str(json_part)?;
            let want = if *upper { "HELLO BODY" } else { "hello body" };
            assert_eq!(echo["body"], want, "{route}: request body callbacks ran");
        }
    }
    // The routes were called in table order, so once the last one's streams have ended, all have.
    for (route, _, _, _, log, done, path) in table.iter().rev() {
        let prefix = format!("needs_{}", route.replace('-', "_"));
        for (counter, expected) in [("log", *log), ("done", *done), ("path_in_log", *path)] {
            let name = format!("{prefix}_{counter}");
            let want = if expected { N } else { 0 };
            let got = gw.filter_counter(&name, |n| n >= want).await;
            assert_eq!(got, want, "{route}: {name}");
        }
    }
    Ok(())
}
