//! Every attribute, in and out of a stream, through `resolve`.

use super::*;
use std::sync::Arc;
use std::time::Duration;
use weir_sdk::abi::split_path;

fn pairs(items: &[(&str, &str)]) -> Headers {
    Headers::from_pairs(items.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
}

fn stream(phase: Phase) -> StreamData {
    let info = RequestInfo {
        source: "127.0.0.1:51234".parse().expect("addr"),
        destination: "[::1]:8080".parse().expect("addr"),
        tls: false,
        protocol: "HTTP/1.1",
        time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        route: Arc::from("api"),
        cluster: Some(Arc::from("svc")),
        connection_id: 42,
        started: std::time::Instant::now(),
        server_name: Some(Arc::from("shop.test")),
        tls_version: Some("TLSv1.3"),
        live: Arc::default(),
    };
    // Set with proxy_set_property by some filter of the request.
    info.live.with_properties(|properties| {
        properties.insert(b"wasm_test\0path".to_vec(), b"/set".to_vec());
        properties.insert(b"custom.dotted".to_vec(), b"mine".to_vec());
    });
    StreamData {
        info: Some(Arc::new(info)),
        properties: Default::default(),
        root: 1,
        phase,
        request_headers: pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "shop.test"),
            (":path", "/orders/7?id=1&x=2"),
            ("user-agent", "curl/8"),
            ("referer", "https://ref.test/"),
            ("x-request-id", "req-1"),
            ("accept", "a"),
            ("accept", "b"),
            ("content-length", "11"),
        ]),
        response_headers: pairs(&[(":status", "201"), ("x-up", "1")]),
        ..StreamData::default()
    }
}

fn plugin() -> PluginInfo {
    PluginInfo { name: Arc::from("state"), root_id: Arc::from("root-a"), vm_id: Arc::from("vm-a") }
}

fn s(v: &str) -> Result<Vec<u8>, Status> {
    Ok(v.as_bytes().to_vec())
}

fn int(v: i64) -> Result<Vec<u8>, Status> {
    Ok(v.to_le_bytes().to_vec())
}

fn map(items: &[(&str, &str)]) -> Result<Vec<u8>, Status> {
    Ok(encode_map(&items.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect::<Vec<_>>()))
}

const NOT_FOUND: Result<Vec<u8>, Status> = Err(Status::NotFound);

/// A row: where to look, the path, and the answer.
type Row<'a> = (&'a PropertySource<'a>, &'static [u8], Result<Vec<u8>, Status>);

#[test]
fn attributes_in_a_stream() {
    let request = stream(Phase::RequestHeaders);
    let response = stream(Phase::ResponseHeaders);
    let plugin = plugin();
    let req = PropertySource { stream: Some(&request), plugin: Some(&plugin), vm_id: "vm-a" };
    let resp = PropertySource { stream: Some(&response), plugin: Some(&plugin), vm_id: "vm-a" };
    let request_map = map(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "shop.test"),
        (":path", "/orders/7?id=1&x=2"),
        ("user-agent", "curl/8"),
        ("referer", "https://ref.test/"),
        ("x-request-id", "req-1"),
        ("accept", "a,b"),
        ("content-length", "11"),
    ]);
    let table: Vec<Row<'_>> = vec![
        (&req, b"request\0path", s("/orders/7?id=1&x=2")),
        (&req, b"request\0url_path", s("/orders/7")),
        (&req, b"request\0query", s("id=1&x=2")),
        (&req, b"request\0host", s("shop.test")),
        (&req, b"request\0scheme", s("http")),
        (&req, b"request\0method", s("GET")),
        (&req, b"request\0headers", request_map),
        (&req, b"request\0headers\0accept", s("a,b")),
        (&req, b"request\0headers\0User-Agent", s("curl/8")),
        (&req, b"request\0headers\0missing", NOT_FOUND),
        (&req, b"request\0headers\0accept\0deeper", NOT_FOUND),
        (&req, b"request\0referer", s("https://ref.test/")),
        (&req, b"request\0useragent", s("curl/8")),
        (&req, b"request\0id", s("req-1")),
        (&req, b"request\0protocol", s("HTTP/1.1")),
        (&req, b"request\0time", int(1_700_000_000_123_456_789)),
        (&req, b"request\0path\0deeper", NOT_FOUND),
        (&req, b"request\0nope", NOT_FOUND),
        (&req, b"request", NOT_FOUND),
        (&req, b"response\0code", NOT_FOUND),
        (&req, b"response\0headers", NOT_FOUND),
        (&resp, b"response\0code", int(201)),
        (&resp, b"response\0headers", map(&[(":status", "201"), ("x-up", "1")])),
        (&resp, b"response\0headers\0x-up", s("1")),
        (&req, b"source\0address", s("127.0.0.1:51234")),
        (&req, b"source\0port", int(51234)),
        (&req, b"destination\0address", s("[::1]:8080")),
        (&req, b"destination\0port", int(8080)),
        (&req, b"connection\0id", Ok(42u64.to_le_bytes().to_vec())),
        (&req, b"connection_id", Ok(42u64.to_le_bytes().to_vec())),
        (&req, b"connection\0mtls", Ok(vec![0])),
        (&req, b"connection\0requested_server_name", s("shop.test")),
        (&req, b"connection\0tls_version", s("TLSv1.3")),
        (&req, b"response\0flags", int(0)),
        (&req, b"xds\0route_name", s("api")),
        (&req, b"route_name", s("api")),
        (&req, b"xds\0cluster_name", s("svc")),
        (&req, b"cluster_name", s("svc")),
        (&req, b"plugin_name", s("state")),
        (&req, b"plugin_root_id", s("root-a")),
        (&req, b"plugin_vm_id", s("vm-a")),
        // Values set with proxy_set_property, by raw path.
        // Envoy looks set properties up by the first segment only: a multi-segment name never round-trips.
        (&req, b"wasm_test\0path", NOT_FOUND),
        (&req, b"wasm_test", NOT_FOUND),
        (&req, b"custom.dotted", s("mine")),
        (&req, b"unknown", NOT_FOUND),
        // A single dotted segment falls back to the attribute.
        (&req, b"request.path", s("/orders/7?id=1&x=2")),
        (&req, b"request.headers.x-request-id", s("req-1")),
        (&req, b"source.address", s("127.0.0.1:51234")),
        (&req, b"plugin_name.x", NOT_FOUND),
        (&req, b"", NOT_FOUND),
    ];
    for (source, path, expect) in table {
        assert_eq!(resolve(&split_path(path), source), expect, "{}", String::from_utf8_lossy(path).replace('\0', "/"));
    }
}

#[test]
fn attributes_outside_a_stream() {
    let plugin = plugin();
    let root = PropertySource { stream: None, plugin: Some(&plugin), vm_id: "vm-a" };
    let vm = PropertySource { stream: None, plugin: None, vm_id: "vm-b" };
    let bare = StreamData::default();
    let no_info = PropertySource { stream: Some(&bare), plugin: None, vm_id: "" };
    let table: Vec<Row<'_>> = vec![
        (&root, b"plugin_name", s("state")),
        (&root, b"plugin_root_id", s("root-a")),
        (&root, b"plugin_vm_id", s("vm-a")),
        (&vm, b"plugin_vm_id", s("vm-b")),
        (&vm, b"plugin_name", NOT_FOUND),
        (&root, b"request\0path", NOT_FOUND),
        (&root, b"request\0headers", NOT_FOUND),
        (&root, b"source\0address", NOT_FOUND),
        (&root, b"connection\0mtls", NOT_FOUND),
        (&root, b"wasm_test\0path", NOT_FOUND),
        (&no_info, b"request\0headers", Ok(Vec::new())),
        (&no_info, b"source\0port", NOT_FOUND),
        (&no_info, b"xds\0route_name", NOT_FOUND),
    ];
    for (source, path, expect) in table {
        assert_eq!(resolve(&split_path(path), source), expect, "{}", String::from_utf8_lossy(path).replace('\0', "/"));
    }
}

#[test]
fn a_route_without_a_cluster_has_no_cluster_name() {
    let mut st = stream(Phase::RequestHeaders);
    let mut info = st.info.as_deref().cloned().expect("info");
    info.cluster = None;
    st.info = Some(Arc::new(info));
    let source = PropertySource { stream: Some(&st), plugin: None, vm_id: "" };
    for path in [&b"xds\0cluster_name"[..], b"cluster_name"] {
        assert_eq!(resolve(&split_path(path), &source), NOT_FOUND);
    }
}

/// Sizes of the request headers as the fixture holds them: every name and value, pseudo-headers included.
const REQUEST_HEADER_BYTES: i64 = 7 + 3 + 7 + 4 + 10 + 9 + 5 + 18 + 10 + 6 + 7 + 17 + 12 + 5 + 6 + 1 + 6 + 1 + 14 + 2;
/// `:status: 201`, `x-up: 1`.
const RESPONSE_HEADER_BYTES: i64 = 7 + 3 + 4 + 1;

fn source<'a>(st: &'a StreamData) -> PropertySource<'a> {
    PropertySource { stream: Some(st), plugin: None, vm_id: "" }
}

fn get(st: &StreamData, path: &[u8]) -> Result<Vec<u8>, Status> {
    resolve(&split_path(path), &source(st))
}

#[test]
fn sizes_durations_and_the_upstream_follow_the_stream() {
    let mut st = stream(Phase::RequestHeaders);
    let live = st.info.as_ref().expect("info").live.clone();
    // Request headers: the body size comes from content-length; nothing about the response or upstream yet.
    assert_eq!(get(&st, b"request\0headers_bytes"), int(REQUEST_HEADER_BYTES));
    assert_eq!(get(&st, b"request\0size"), int(11), "content-length");
    assert_eq!(get(&st, b"request\0total_size"), int(REQUEST_HEADER_BYTES), "no body byte received yet");
    for path in [
        &b"request\0duration"[..],
        b"response\0size",
        b"response\0total_size",
        b"response\0headers_bytes",
        b"response\0code_details",
        b"upstream\0address",
        b"upstream\0port",
    ] {
        assert_eq!(get(&st, path), NOT_FOUND, "{}", String::from_utf8_lossy(path));
    }
    // Without content-length, the body size is what was received so far.
    st.request_headers.remove(b"content-length");
    live.add_request_body(5);
    live.add_request_body(4);
    assert_eq!(get(&st, b"request\0size"), int(9));
    assert_eq!(get(&st, b"request\0total_size"), int(REQUEST_HEADER_BYTES - 16 + 9));
    // The upstream is chosen, the response arrives.
    live.set_upstream(Arc::from("127.0.0.1:3000"));
    live.set_code_details("via_upstream");
    st.phase = Phase::ResponseBody;
    live.add_response_body(100);
    for (path, expect) in [
        (&b"upstream\0address"[..], s("127.0.0.1:3000")),
        (b"upstream\0port", int(3000)),
        (b"response\0code_details", s("via_upstream")),
        (b"response\0headers_bytes", int(RESPONSE_HEADER_BYTES)),
        (b"response\0size", int(100)),
        (b"response\0total_size", int(100 + RESPONSE_HEADER_BYTES)),
        (b"request\0duration", NOT_FOUND),
    ] {
        assert_eq!(get(&st, path), expect, "{}", String::from_utf8_lossy(path));
    }
    // on_log: the trailers count in the total; the duration, as recorded when the stream ended (the first
    // record stands).
    st.phase = Phase::Log;
    st.response_trailers = Some(pairs(&[("grpc-status", "0")]));
    assert_eq!(get(&st, b"response\0total_size"), int(100 + RESPONSE_HEADER_BYTES + 12));
    assert!(get(&st, b"request\0duration").is_ok(), "measured on the spot when not recorded yet");
    live.finish(Duration::from_nanos(1_234_567));
    live.finish(Duration::from_secs(9));
    assert_eq!(get(&st, b"request\0duration"), int(1_234_567));
    // A re-routed request names its new route and cluster.
    assert_eq!((get(&st, b"xds\0route_name"), get(&st, b"cluster_name")), (s("api"), s("svc")));
    live.set_rerouted(Arc::from("other"), None);
    assert_eq!((get(&st, b"route_name"), get(&st, b"xds\0cluster_name")), (s("other"), NOT_FOUND));
}

#[test]
fn plain_connections_have_no_tls_facts() {
    let mut st = stream(Phase::RequestHeaders);
    let mut info = st.info.as_deref().cloned().expect("info");
    (info.server_name, info.tls_version) = (None, None);
    st.info = Some(Arc::new(info));
    for path in [&b"connection\0requested_server_name"[..], b"connection\0tls_version"] {
        assert_eq!(get(&st, path), NOT_FOUND, "{}", String::from_utf8_lossy(path));
    }
    assert_eq!(get(&st, b"connection\0mtls"), Ok(vec![0]));
    // An unparsable upstream port is not a port.
    st.info.as_ref().expect("info").live.set_upstream(Arc::from("no-port"));
    st.phase = Phase::ResponseHeaders;
    assert_eq!(get(&st, b"upstream\0port"), NOT_FOUND);
    assert_eq!(get(&st, b"upstream\0address"), s("no-port"));
}
