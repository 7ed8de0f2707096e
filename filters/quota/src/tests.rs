//! The filter on the SDK's fake host: configuration checks, limits, headers and refusals, several limits and
//! overrides, token usage from JSON and from SSE streams split at every byte, reservations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use weir_sdk::testing::FakeHost;
use weir_sdk::Action;

use super::Quota;

/// A time on a whole second, far from any window edge used below (windows of at most 60 s).
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn host(config: Value) -> FakeHost<Quota> {
    let mut host = FakeHost::<Quota>::new();
    host.set_time(t0());
    assert!(host.configure(&config.to_string()), "{:?}", host.logs());
    host
}

/// Sends request headers; the local response's status, or 0 when the request went on.
fn status(host: &mut FakeHost<Quota>, headers: &[(&str, &str)]) -> u16 {
    let mut all = vec![(":method", "GET"), (":path", "/v1/chat/completions")];
    all.extend_from_slice(headers);
    let mut stream = host.stream();
    match stream.send_request_headers(&all, true) {
        Action::Continue => 0,
        _ => stream.local_response().map_or(1, |r| r.status),
    }
}

#[test]
fn refuses_bad_configurations_with_a_reason() {
    let limit = json!({"name": "a", "limit": 1, "window_seconds": 1});
    let with = |change: Value| {
        let mut l = limit.clone();
        if let (Some(l), Some(c)) = (l.as_object_mut(), change.as_object()) {
            l.extend(c.clone());
        }
        json!({"failure_mode": "open", "limits": [l]})
    };
    let table: &[(Value, &str)] = &[
        (json!({"limits": [limit]}), "missing field `failure_mode`"),
        (json!({"failure_mode": "maybe", "limits": [limit]}), "unknown variant `maybe`"),
        (json!({"failure_mode": "open", "limits": []}), "`limits` needs 1 to 16"),
        (with(json!({"algorithm": "leaky"})), "`limits[0].algorithm` \"leaky\""),
        (with(json!({"window_seconds": 0})), "`limits[0].window_seconds`"),
        (with(json!({"name": "a b"})), "`limits[0].name`"),
        (with(json!({"burst": 5})), "`limits[0].burst` applies to token_bucket only"),
        (with(json!({"reserve": 5})), "apply to kind tokens only"),
        (with(json!({"key": ["ip"]})), "`limits[0].key[0]`: \"ip\" is not a key source"),
        (
            with(json!({"key": ["consumer"], "overrides": [{"match": ["a", "b"], "limit": 3}]})),
            "has 2 parts; the key has 1",
        ),
        (json!({"failure_mode": "open", "limits": [limit, limit]}), "used twice"),
        (
            json!({"failure_mode": "open", "limits": [limit], "client_ip": {"trusted_proxies": ["10.0.0.0/40"]}}),
            "trusted_proxies[0]",
        ),
    ];
    for (config, reason) in table {
        let mut host = FakeHost::<Quota>::new();
        assert!(!host.configure(&config.to_string()), "{config}");
        assert!(host.logged(reason), "{config}: {:?}", host.logs());
    }
}

#[test]
fn counts_per_key_answers_429_with_headers_and_counts_metrics() {
    let mut host = host(json!({"failure_mode": "closed", "limits": [
        {"name": "per-key", "limit": 2, "window_seconds": 60, "key": [{"api_key": "x-api-key"}],
         "overrides": [{"match": "gold", "limit": 3}]}
    ]}));
    assert_eq!(status(&mut host, &[("x-api-key", "k1")]), 0);
    assert_eq!(status(&mut host, &[("x-api-key", "k1")]), 0);
    let mut stream = host.stream();
    stream.send_request_headers(&[(":path", "/"), ("x-api-key", "k1")], true);
    let refused = stream.local_response().expect("refused");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("60"));
    assert_eq!(refused.header("ratelimit-policy"), Some("\"per-key\";q=2;w=60"));
    assert_eq!(refused.header("ratelimit"), Some("\"per-key\";r=0;t=60"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    let body: Value = serde_json::from_slice(&refused.body).expect("json");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");

    // Another key has its own counter; the override's key has 3.
    assert_eq!(status(&mut host, &[("x-api-key", "k2")]), 0);
    for want in [0, 0, 0, 429] {
        assert_eq!(status(&mut host, &[("x-api-key", "gold")]), want);
    }
    // No key: the limit does not apply.
    assert_eq!(status(&mut host, &[]), 0);
    assert_eq!(host.metric("quota_allowed"), Some(7));
    assert_eq!(host.metric("quota_refused"), Some(2));
    let keys = host.shared_data("quota:v1:per-key:fixed_window:60:").is_none();
    assert!(keys, "the API key is stored hashed, never as an empty key");
}

#[test]
fn a_refusal_by_a_later_limit_gives_back_what_earlier_ones_took() {
    let mut host = host(json!({"failure_mode": "closed", "limits": [
        {"name": "daily", "limit": 100, "window_seconds": 86400},
        {"name": "burst", "limit": 1, "window_seconds": 60, "key": ["consumer"]}
    ]}));
    assert_eq!(status(&mut host, &[("x-weir-consumer", "ada")]), 0);
    assert_eq!(status(&mut host, &[("x-weir-consumer", "ada")]), 429);
    assert_eq!(status(&mut host, &[("x-weir-consumer", "ada")]), 429);
    let mut stream = host.stream();
    stream.send_request_headers(&[(":path", "/"), ("x-weir-consumer", "bob")], true);
    stream.send_response_headers(&[(":status", "200")], true);
    let headers = stream.response_headers();
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(get("ratelimit-policy").as_deref(), Some("\"daily\";q=100;w=86400, \"burst\";q=1;w=60"));
    let ratelimit = get("ratelimit").unwrap_or_default();
    assert!(ratelimit.starts_with("\"daily\";r=98;"), "two admitted, refusals refunded: {ratelimit}");
    assert_eq!(get("x-ratelimit-limit").as_deref(), Some("1"), "the legacy trio shows the tighter limit");
}

fn token_config(reserve: u64) -> Value {
    json!({"failure_mode": "closed", "limits": [
        {"name": "tokens", "kind": "tokens", "algorithm": "token_bucket", "limit": 100, "window_seconds": 3600,
         "key": ["consumer"], "reserve": reserve, "error": "insufficient_quota"}
    ]})
}

/// One exchange: request headers (and body), response headers, the body in `chunk`-byte pieces.
fn exchange(host: &mut FakeHost<Quota>, request_body: &str, content_type: &str, response: &str, chunk: usize) -> u16 {
    let mut stream = host.stream();
    let headers =
        [(":method", "POST"), (":path", "/v1/chat/completions"), ("x-weir-consumer", "ada"), ("content-length", "9")];
    if stream.send_request_headers(&headers, false) != Action::Continue {
        return stream.local_response().map_or(1, |r| r.status);
    }
    assert_eq!(stream.request_header("content-length"), None, "the body may change");
    assert_eq!(stream.send_request_body(request_body.as_bytes(), true), Action::Continue);
    stream.send_response_headers(&[(":status", "200"), ("content-type", content_type)], false);
    let pieces: Vec<&[u8]> = response.as_bytes().chunks(chunk).collect();
    for (i, piece) in pieces.iter().enumerate() {
        stream.send_response_body(piece, i + 1 == pieces.len());
    }
    stream.finish();
    0
}

fn remaining(host: &FakeHost<Quota>) -> i64 {
    let stored = host.shared_data("quota:v1:tokens:token_bucket:3600:ada").expect("counter");
    // The binary layout: a 0xB1 byte, then little-endian i64s (tokens first).
    assert_eq!(stored.first(), Some(&0xB1), "{stored:?}");
    i64::from_le_bytes(stored[1..9].try_into().expect("tokens")) / 1000
}

#[test]
fn tokens_are_charged_once_from_json_and_from_split_streams() {
    let mut host = host(token_config(0));
    let json_body = r#"{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}"#;
    assert_eq!(exchange(&mut host, "{}", "application/json", json_body, 7), 0);
    assert_eq!(remaining(&host), 70);
    let sse = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
               data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":15,\"total_tokens\":20}}\n\n\
               data: [DONE]\n\n";
    for chunk in [1, 3, 1000] {
        assert_eq!(exchange(&mut host, "{}", "text/event-stream", sse, chunk), 0);
    }
    assert_eq!(remaining(&host), 10);
    let anthropic = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}\n\n\
                     event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":8}}\n\n";
    assert_eq!(exchange(&mut host, "{}", "text/event-stream; charset=utf-8", anthropic, 5), 0);
    assert_eq!(remaining(&host), -2, "post-paid: the last response overdraws");
    let mut refused = host.stream();
    refused.send_request_headers(&[(":path", "/"), ("x-weir-consumer", "ada")], true);
    let answer = refused.local_response().expect("refused");
    assert_eq!(answer.status, 429);
    let body: Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["error"]["code"], "insufficient_quota");

    assert_eq!(host.metric("quota_tokens_charged"), Some(30 + 3 * 20 + 12));
}

#[test]
fn streaming_openai_requests_ask_for_usage() {
    let mut host = host(token_config(0));
    let mut stream = host.stream();
    let headers = [(":method", "POST"), (":path", "/v1/chat/completions"), ("x-weir-consumer", "ada")];
    assert_eq!(stream.send_request_headers(&headers, false), Action::Continue);
    assert_eq!(stream.send_request_body(br#"{"stream":true,"#, false), Action::Pause);
    assert_eq!(stream.send_request_body(br#""messages":[]}"#, true), Action::Continue);
    let body: Value = serde_json::from_slice(&stream.request_body()).expect("json");
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[test]
fn reservations_are_held_then_settled() {
    let mut host = host(token_config(40));
    let mut first = host.stream();
    let headers = [(":method", "GET"), (":path", "/v1/messages"), ("x-weir-consumer", "ada")];
    assert_eq!(first.send_request_headers(&headers, true), Action::Continue);
    let first_id = first.id();
    for want in [Action::Continue, Action::Pause] {
        let mut next = host.stream();
        assert_eq!(next.send_request_headers(&headers, true), want, "100 tokens hold two reservations of 40");
    }
    let mut first = host.stream_by_id(first_id).expect("first");
    first.send_response_headers(&[(":status", "200"), ("content-type", "application/json")], false);
    first.send_response_body(br#"{"type":"message","usage":{"input_tokens":3,"output_tokens":2}}"#, true);
    first.finish();
    assert_eq!(remaining(&host), 100 - 40 - 5, "settled at 5");
    host.set_time(t0() + Duration::from_secs(1));
    let mut failed = host.stream();
    assert_eq!(failed.send_request_headers(&headers, true), Action::Continue);
    failed.send_response_headers(&[(":status", "500")], true);
    failed.finish();
    assert_eq!(remaining(&host), 55, "a failed upstream answer gives the reservation back");
}

#[test]
fn client_addresses_behind_a_trusted_proxy() {
    let mut host =
        host(json!({"failure_mode": "closed", "client_ip": {"header": "x-forwarded-for", "trusted_hops": 1},
        "limits": [{"name": "ip", "limit": 1, "window_seconds": 60, "key": ["client_ip"]}]}));
    host.set_property(&["source", "address"], "10.0.0.1:4000");
    assert_eq!(status(&mut host, &[("x-forwarded-for", "1.1.1.1")]), 0);
    assert_eq!(
        status(&mut host, &[("x-forwarded-for", "9.9.9.9, 1.1.1.1")]),
        429,
        "spoofed entries on the left do not matter"
    );
    assert_eq!(status(&mut host, &[("x-forwarded-for", "2.2.2.2")]), 0);
    assert!(host.shared_data("quota:v1:ip:fixed_window:60:1.1.1.1").is_some());
}

#[test]
fn the_readme_example_is_accepted() {
    let readme = include_str!("../README.md");
    let start = readme.find("```json\n").expect("a json block") + "```json\n".len();
    let end = start + readme[start..].find("```").expect("its end");
    let example: Value = serde_json::from_str(&readme[start..end]).expect("the example is JSON");
    let mut host = host(example);
    host.set_property(&["source", "address"], "10.0.0.1:4000");
    let headers = [("x-weir-consumer", "acme"), ("x-model", "m"), ("x-forwarded-for", "1.1.1.1")];
    assert_eq!(status(&mut host, &headers), 0, "{:?}", host.logs());
}

#[test]
fn retry_after_waits_for_every_limit() {
    let mut host = host(json!({"failure_mode": "closed", "limits": [
        {"name": "second", "limit": 1, "window_seconds": 1},
        {"name": "day", "algorithm": "token_bucket", "limit": 1, "window_seconds": 86400}
    ]}));
    assert_eq!(status(&mut host, &[]), 0);
    let mut stream = host.stream();
    stream.send_request_headers(&[(":path", "/")], true);
    let refused = stream.local_response().expect("refused");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("86400"), "the per-second limit refused, the daily one decides");
}

#[test]
fn a_refused_request_gives_its_reservation_back_once() {
    let mut config = token_config(40);
    config["limits"].as_array_mut().expect("limits").push(json!({"name": "one", "limit": 1, "window_seconds": 60,
        "key": ["consumer"]}));
    let mut host = host(config);
    let headers = [(":method", "GET"), (":path", "/v1/messages"), ("x-weir-consumer", "ada")];
    let mut first = host.stream();
    assert_eq!(first.send_request_headers(&headers, true), Action::Continue);
    let mut refused = host.stream();
    assert_eq!(refused.send_request_headers(&headers, true), Action::Pause);
    refused.send_response_headers(&[(":status", "429")], true);
    refused.finish();
    assert_eq!(remaining(&host), 60, "only the first request's reservation is held");
}

#[test]
fn routes_and_requests_without_a_key_part() {
    let mut host = host(json!({"failure_mode": "closed", "limits": [
        {"name": "by-route", "limit": 1, "window_seconds": 60, "key": ["route"]},
        {"name": "grouped", "limit": 2, "window_seconds": 60, "key": [{"header": "x-team"}], "missing": "group"}
    ]}));
    host.set_property(&["xds", "route_name"], "chat");
    assert_eq!(status(&mut host, &[("x-team", "a")]), 0);
    assert_eq!(status(&mut host, &[("x-team", "b")]), 429, "one per route");
    host.set_property(&["xds", "route_name"], "embeddings");
    assert_eq!(status(&mut host, &[]), 0);
    host.set_property(&["xds", "route_name"], "other");
    assert_eq!(status(&mut host, &[]), 0);
    host.set_property(&["xds", "route_name"], "more");
    assert_eq!(status(&mut host, &[]), 429, "requests without x-team share one counter of 2");
    assert!(host.shared_data("quota:v1:by-route:fixed_window:60:chat").is_some());
    assert!(host.shared_data("quota:v1:grouped:fixed_window:60:").is_some());
}

#[test]
fn the_header_families_can_be_chosen() {
    for (headers, want_ietf, want_legacy) in [
        (json!(true), true, true),
        (json!("ietf"), true, false),
        (json!("legacy"), false, true),
        (json!(false), false, false),
    ] {
        let mut host = host(json!({"failure_mode": "open", "headers": headers,
            "limits": [{"name": "a", "limit": 5, "window_seconds": 60}]}));
        let mut stream = host.stream();
        stream.send_request_headers(&[(":path", "/")], true);
        stream.send_response_headers(&[(":status", "200")], true);
        assert_eq!(stream.response_header("ratelimit").is_some(), want_ietf, "{headers}");
        assert_eq!(stream.response_header("x-ratelimit-remaining").is_some(), want_legacy, "{headers}");
    }
    let mut host = FakeHost::<Quota>::new();
    let config =
        json!({"failure_mode": "open", "headers": "all", "limits": [{"name": "a", "limit": 5, "window_seconds": 60}]});
    assert!(!host.configure(&config.to_string()));
}

#[test]
fn decimals_and_seconds_are_written_exactly() {
    let table: &[u64] = &[
        0,
        7,
        10,
        99_999_999,
        100_000_000,
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        281_474_976_710_656,
        10_000_000_000_000_000,
        u64::MAX,
    ];
    for &n in table {
        let mut out = String::from("x=");
        crate::response::push_decimal(&mut out, n);
        assert_eq!(out, format!("x={n}"));
    }
    for (ns, s) in [(0, 0), (1, 1), (1_000_000_000, 1), (1_000_000_001, 2), (u64::MAX, 18_446_744_074)] {
        assert_eq!(crate::response::seconds(ns), s, "{ns} ns");
    }
}
