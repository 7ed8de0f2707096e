//! The filter on the SDK's fake host: configuration checks, hits and misses with their headers, request and
//! response `Cache-Control`, POST bodies, SSE streams (complete, interrupted), bounds and eviction, purge, and
//! collapsing with the tick (GET in the headers callback, POST in its final body callback).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use weir_sdk::testing::FakeHost;
use weir_sdk::Action;

use super::ResponseCache;

const TOKEN: &str = "0123456789abcdef-token";

fn host(config: Value) -> FakeHost<ResponseCache> {
    let mut host = FakeHost::<ResponseCache>::new();
    host.set_time(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    assert!(host.configure(&config.to_string()), "{:?}", host.logs());
    host
}

/// What a request got: `Some(local response)` when answered here, `None` when forwarded (then answered by
/// `upstream`, whose `x-cache-status` is returned as the status text).
struct Seen {
    status: u16,
    cache: String,
    body: String,
    age: Option<String>,
}

/// Sends a GET (or the given method and body) through the filter; when forwarded, the upstream answers with
/// `response` headers and `body`.
fn exchange(
    host: &mut FakeHost<ResponseCache>,
    request: &[(&str, &str)],
    body: Option<&str>,
    response: &[(&str, &str)],
    response_body: &str,
) -> Seen {
    let mut all = vec![(":method", "GET"), (":path", "/items?b=2&a=1"), (":authority", "api.test")];
    for (name, value) in request {
        all.retain(|(n, _)| n != name);
        all.push((name, value));
    }
    let mut stream = host.stream();
    let mut action = stream.send_request_headers(&all, body.is_none());
    if let Some(body) = body {
        action = stream.send_request_body(body.as_bytes(), true);
    }
    if let Some(local) = stream.local_response() {
        return Seen {
            status: local.status,
            cache: local.header("x-cache-status").unwrap_or_default().to_owned(),
            body: local.text(),
            age: local.header("age").map(str::to_owned),
        };
    }
    assert_eq!(action, Action::Continue, "forwarded");
    stream.send_response_headers(response, response_body.is_empty());
    if !response_body.is_empty() {
        stream.send_response_body(response_body.as_bytes(), true);
    }
    let cache = stream.response_header("x-cache-status").unwrap_or_default();
    let status = response.iter().find(|(n, _)| *n == ":status").map_or(0, |(_, v)| v.parse().unwrap_or(0));
    stream.finish();
    Seen { status, cache, body: response_body.to_owned(), age: None }
}

/// Headers, as the tables write them.
type Pairs = &'static [(&'static str, &'static str)];

const OK: &[(&str, &str)] = &[(":status", "200"), ("content-type", "text/plain")];

#[test]
fn refuses_bad_configurations_with_a_reason() {
    let table: &[(Value, &str)] = &[
        (json!({"ttl_seconds": 0}), "`ttl_seconds` must be 1"),
        (json!({"max_entries": 0}), "`max_entries` must be 1 to 10000"),
        (json!({"methods": ["PUT"]}), "`methods[0]` \"PUT\""),
        (json!({"statuses": [99]}), "`statuses[0]` 99"),
        (json!({"key": {"headers": ["bad header"]}}), "`key.headers[0]`"),
        (json!({"key": {"query": "random"}}), "unknown variant `random`"),
        (json!({"purge": {"path": "/p", "token": "short"}}), "`purge.token` must be at least 16"),
        (json!({"purge": {"path": "p", "token": TOKEN}}), "`purge.path`"),
        (json!({"collapse": {"timeout_ms": 60000}}), "`collapse.timeout_ms`"),
        (json!({"max_entries": 10000, "max_body_bytes": 8388608}), "shared-data keys"),
        (json!({"namespace": "a b"}), "`namespace`"),
        (json!({"memoize_revalidate_ms": 0}), "`memoize_revalidate_ms` must be 1 to 60000"),
        (json!({"memoize_revalidate_ms": 60001}), "`memoize_revalidate_ms` must be 1 to 60000"),
        (json!({"nope": 1}), "unknown field `nope`"),
    ];
    for (config, reason) in table {
        let mut host = FakeHost::<ResponseCache>::new();
        assert!(!host.configure(&config.to_string()), "{config}");
        assert!(host.logged(reason), "{config}: {:?}", host.logs());
    }
}

#[test]
fn a_miss_is_stored_and_the_next_request_hits_with_age() {
    let mut host = host(json!({}));
    let first = exchange(&mut host, &[], None, OK, "hello");
    assert_eq!(first.cache, "MISS");
    // The same query in another order is the same key.
    host.set_time(UNIX_EPOCH + Duration::from_secs(1_800_000_007));
    let second = exchange(&mut host, &[(":path", "/items?a=1&b=2")], None, OK, "other");
    assert_eq!((second.status, second.cache.as_str(), second.body.as_str()), (200, "HIT", "hello"));
    assert_eq!(second.age.as_deref(), Some("7"));
    // Another host, path or method is another key; POST is not cached by default (no header at all).
    assert_eq!(exchange(&mut host, &[(":authority", "other.test")], None, OK, "x").cache, "MISS");
    assert_eq!(exchange(&mut host, &[(":method", "POST")], None, OK, "x").cache, "");
    // After the TTL: EXPIRED, then stored again.
    host.set_time(UNIX_EPOCH + Duration::from_secs(1_800_000_301));
    assert_eq!(exchange(&mut host, &[], None, OK, "new").cache, "EXPIRED");
    assert_eq!(exchange(&mut host, &[], None, OK, "x").body, "new");
    assert_eq!(host.metric("response_cache_hits"), Some(2));
    assert_eq!(host.metric("response_cache_misses"), Some(2));
    assert_eq!(host.metric("response_cache_expired"), Some(1));
}

#[test]
fn request_directives_and_the_bypass_header() {
    let mut host = host(json!({}));
    exchange(&mut host, &[], None, OK, "v1");
    let table: &[(Pairs, &str, &str)] = &[
        (&[("x-cache-bypass", "1")], "BYPASS", "v2"),
        (&[("x-cache-bypass", "off")], "HIT", "v1"),
        (&[("cache-control", "no-store")], "BYPASS", "v3"),
        (&[], "HIT", "v1"),
        // no-cache refreshes: the answer is stored.
        (&[("cache-control", "no-cache")], "BYPASS", "v4"),
        (&[], "HIT", "v4"),
        (&[("pragma", "no-cache")], "BYPASS", "v5"),
        (&[("cache-control", "max-age=0")], "BYPASS", "v6"),
        (&[("cache-control", "max-age=60")], "HIT", "v6"),
    ];
    for (headers, want, body) in table {
        let seen = exchange(&mut host, headers, None, OK, body);
        assert_eq!((seen.cache.as_str(), seen.body.as_str()), (*want, *body), "{headers:?}");
    }
    // max-age counts against the entry's age.
    host.set_time(UNIX_EPOCH + Duration::from_secs(1_800_000_030));
    assert_eq!(exchange(&mut host, &[("cache-control", "max-age=10")], None, OK, "v7").cache, "EXPIRED");
}

#[test]
fn response_rules_decide_what_is_stored() {
    let table: &[(Value, Pairs, bool)] = &[
        (json!({}), &[(":status", "200")], true),
        (json!({}), &[(":status", "500")], false),
        (json!({"statuses": [500]}), &[(":status", "500")], true),
        (json!({}), &[(":status", "200"), ("cache-control", "no-store")], false),
        (json!({}), &[(":status", "200"), ("cache-control", "private")], false),
        (json!({}), &[(":status", "200"), ("cache-control", "max-age=0")], false),
        (json!({"response_cache_control": false}), &[(":status", "200"), ("cache-control", "no-store")], true),
        (json!({}), &[(":status", "200"), ("set-cookie", "a=1")], false),
        (json!({"cache_set_cookie": true}), &[(":status", "200"), ("set-cookie", "a=1")], true),
        (json!({}), &[(":status", "200"), ("vary", "accept-language")], false),
        (json!({"key": {"headers": ["accept-language"]}}), &[(":status", "200"), ("vary", "Accept-Language")], true),
        (json!({"max_body_bytes": 4}), &[(":status", "200")], false),
    ];
    for (config, response, stored) in table {
        let mut host = host(config.clone());
        exchange(&mut host, &[], None, response, "hello");
        let again = exchange(&mut host, &[], None, response, "other");
        assert_eq!(again.cache == "HIT", *stored, "{config} {response:?}");
    }
    // s-maxage wins over max-age.
    let mut host = host(json!({}));
    exchange(&mut host, &[], None, &[(":status", "200"), ("cache-control", "max-age=1, s-maxage=100")], "a");
    host.set_time(UNIX_EPOCH + Duration::from_secs(1_800_000_050));
    assert_eq!(exchange(&mut host, &[], None, OK, "b").cache, "HIT");
}

#[test]
fn post_bodies_are_keyed_by_normalized_json_and_streams_are_kept_apart() {
    let mut host = host(json!({"methods": ["POST"], "response_cache_control": false}));
    let post = [(":method", "POST"), (":path", "/v1/chat/completions")];
    let json_ok = &[(":status", "200"), ("content-type", "application/json")];
    let body_a = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"user":"ada"}"#;
    let body_b = r#"{"messages":[{"content":"hi","role":"user"}],"model":"m","user":"bob"}"#;
    assert_eq!(exchange(&mut host, &post, Some(body_a), json_ok, "{\"answer\":1}").cache, "MISS");
    let hit = exchange(&mut host, &post, Some(body_b), json_ok, "x");
    assert_eq!((hit.cache.as_str(), hit.body.as_str()), ("HIT", "{\"answer\":1}"));
    let other = r#"{"model":"m","messages":[{"role":"user","content":"bye"}]}"#;
    assert_eq!(exchange(&mut host, &post, Some(other), json_ok, "x").cache, "MISS");

    // The streaming twin is another entry; an interrupted stream is not stored, a complete one is.
    let streaming = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let sse = &[(":status", "200"), ("content-type", "text/event-stream")];
    let partial = "data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n";
    assert_eq!(exchange(&mut host, &post, Some(streaming), sse, partial).cache, "MISS");
    assert_eq!(host.metric("response_cache_not_stored"), Some(1));
    let whole = format!("{partial}data: [DONE]\n\n");
    assert_eq!(exchange(&mut host, &post, Some(streaming), sse, &whole).cache, "MISS");
    let replay = exchange(&mut host, &post, Some(streaming), sse, "x");
    assert_eq!((replay.cache.as_str(), replay.body.as_str()), ("HIT", whole.as_str()));
    // The plain entry is still the JSON one.
    assert_eq!(exchange(&mut host, &post, Some(body_a), json_ok, "x").body, "{\"answer\":1}");
}

#[test]
fn entries_are_scoped_by_consumer_tenant_and_route() {
    let mut host = host(json!({"key": {"tenant_header": "x-tenant"}}));
    exchange(&mut host, &[("x-tenant", "acme")], None, OK, "acme's");
    assert_eq!(exchange(&mut host, &[("x-tenant", "other")], None, OK, "other's").cache, "MISS");
    assert_eq!(exchange(&mut host, &[("x-tenant", "acme")], None, OK, "x").body, "acme's");
    host.set_property(&["weir.consumer"], "ada");
    assert_eq!(exchange(&mut host, &[("x-tenant", "acme")], None, OK, "ada's").cache, "MISS");
    host.set_property(&["xds", "route_name"], "r2");
    assert_eq!(exchange(&mut host, &[("x-tenant", "acme")], None, OK, "r2's").cache, "MISS");
}

#[test]
fn bounds_evict_the_least_recently_used() {
    let mut host = host(json!({"max_entries": 2, "touch_interval_ms": 0}));
    exchange(&mut host, &[(":path", "/a")], None, OK, "a");
    exchange(&mut host, &[(":path", "/b")], None, OK, "b");
    host.set_time(UNIX_EPOCH + Duration::from_secs(1_800_000_001));
    assert_eq!(exchange(&mut host, &[(":path", "/a")], None, OK, "x").cache, "HIT");
    exchange(&mut host, &[(":path", "/c")], None, OK, "c");
    let table = [("/a", "HIT"), ("/c", "HIT"), ("/b", "MISS")];
    for (path, want) in table {
        assert_eq!(exchange(&mut host, &[(":path", path)], None, OK, "again").cache, want, "{path}");
    }
    assert!(host.metric("response_cache_evictions").unwrap_or(0) >= 2);
    assert_eq!(host.metric("response_cache_entries"), Some(2));
    // Bytes: an entry larger than half of max_bytes pushes the others out.
    let mut host = self::host(json!({"max_bytes": 3000, "max_body_bytes": 2000}));
    exchange(&mut host, &[(":path", "/small")], None, OK, "s");
    exchange(&mut host, &[(":path", "/large")], None, OK, &"L".repeat(1900));
    exchange(&mut host, &[(":path", "/large2")], None, OK, &"M".repeat(1900));
    assert_eq!(exchange(&mut host, &[(":path", "/large")], None, OK, "x").cache, "MISS");
    assert!(host.metric("response_cache_bytes").unwrap_or(i64::MAX) <= 3000);
}

#[test]
fn purge_by_key_and_prefix_with_the_token() {
    let mut host = host(json!({"purge": {"path": "/_cache", "token": TOKEN}}));
    for path in ["/a/1", "/a/2", "/b/1"] {
        exchange(&mut host, &[(":path", path)], None, OK, "v");
    }
    let auth = format!("Bearer {TOKEN}");
    let table: &[(&str, &str, Option<&str>, u16, Value)] = &[
        ("GET", "/_cache", None, 401, json!(null)),
        ("GET", "/_cache", Some("Bearer wrong"), 401, json!(null)),
        ("GET", "/_cache", Some(&auth), 200, json!(3)),
        ("POST", "/_cache", Some(&auth), 400, json!(null)),
        ("PUT", "/_cache", Some(&auth), 405, json!(null)),
        ("POST", "/_cache?key=GET%20api.test%2Fa%2F1", Some(&auth), 200, json!(1)),
        ("POST", "/_cache?prefix=GET%20api.test%2Fa", Some(&auth), 200, json!(1)),
    ];
    for (method, path, authorization, status, want) in table {
        let mut request = vec![(":method", *method), (":path", *path)];
        if let Some(a) = authorization {
            request.push(("authorization", a));
        }
        let seen = exchange(&mut host, &request, None, OK, "never");
        assert_eq!(seen.status, *status, "{method} {path}");
        if *status == 200 {
            let body: Value = serde_json::from_str(&seen.body).expect("json");
            let got = if *method == "GET" { &body["entries"] } else { &body["purged"] };
            assert_eq!(got, want, "{method} {path}: {body}");
        }
    }
    let table = [("/a/1", "MISS"), ("/a/2", "MISS"), ("/b/1", "HIT")];
    for (path, want) in table {
        assert_eq!(exchange(&mut host, &[(":path", path)], None, OK, "w").cache, want, "{path}");
    }
    assert_eq!(host.metric("response_cache_purged"), Some(2));
}

#[test]
fn concurrent_misses_wait_for_the_leader_and_get_its_answer() {
    let mut host = host(json!({"collapse": {"timeout_ms": 100, "poll_ms": 10}}));
    let request = [(":method", "GET"), (":path", "/slow"), (":authority", "api.test")];
    let mut leader = host.stream();
    assert_eq!(leader.send_request_headers(&request, true), Action::Continue);
    let leader_id = leader.id();
    let mut follower = host.stream();
    assert_eq!(follower.send_request_headers(&request, true), Action::Pause, "the second miss waits");
    let follower_id = follower.id();
    assert_eq!(host.tick_period(), Some(Duration::from_millis(10)));
    assert!(host.tick());
    assert!(host.stream_by_id(follower_id).expect("alive").local_response().is_none(), "still waiting");
    let mut leader = host.stream_by_id(leader_id).expect("alive");
    leader.send_response_headers(OK, false);
    leader.send_response_body(b"shared", true);
    leader.finish();
    assert!(host.tick());
    let follower = host.stream_by_id(follower_id).expect("alive");
    let answer = follower.local_response().expect("answered from the cache");
    assert_eq!((answer.text().as_str(), answer.header("x-cache-status")), ("shared", Some("HIT")));
    assert_eq!(host.metric("response_cache_collapsed"), Some(1));
    assert_eq!(host.tick_period(), None, "the tick stops when nobody waits");

    // A leader that never answers: the follower goes upstream itself after the bound.
    let request = [(":method", "GET"), (":path", "/never"), (":authority", "api.test")];
    let mut leader = host.stream();
    leader.send_request_headers(&request, true);
    let mut follower = host.stream();
    assert_eq!(follower.send_request_headers(&request, true), Action::Pause);
    let follower_id = follower.id();
    for _ in 0..10 {
        host.tick();
    }
    let follower = host.stream_by_id(follower_id).expect("alive");
    assert!(follower.request_resumed() && follower.local_response().is_none(), "resumed upstream");
    assert_eq!(host.metric("response_cache_collapse_timeouts"), Some(1));
}

#[test]
fn a_lead_taken_again_after_it_expired_is_not_ended_by_its_first_holder() {
    let _host = host(json!({}));
    let rules = serde_json::from_value::<crate::config::Config>(json!({})).expect("config").compile().expect("rules");
    let store = crate::store::Store::new(&rules);
    let key = crate::key::Hash([1; 16]);
    // (now, deadline, leads)
    let table = [(0, 100, true), (50, 150, false), (100, 200, true)];
    for (now, deadline, leads) in table {
        assert_eq!(store.lead(&key, now, deadline), Ok(leads), "at {now}");
    }
    store.release(&key, 100).expect("release");
    assert_eq!(store.lock_deadline(&key), Ok(Some(200)), "the second lead stays");
    store.release(&key, 200).expect("release");
    assert_eq!(store.lock_deadline(&key), Ok(None));
}

/// A POST through the filter up to its final body callback; returns the stream's id and what that callback did.
fn post_until_body(host: &mut FakeHost<ResponseCache>, body: &str) -> (u32, Action) {
    let request = [(":method", "POST"), (":path", "/v1/chat/completions"), (":authority", "api.test")];
    let mut stream = host.stream();
    assert_eq!(stream.send_request_headers(&request, false), Action::Continue, "the key needs the body");
    let action = stream.send_request_body(body.as_bytes(), true);
    (stream.id(), action)
}

#[test]
fn concurrent_posts_with_the_same_body_wait_in_their_final_body_callback() {
    let mut host = host(json!({"methods": ["POST"], "collapse": {"timeout_ms": 100, "poll_ms": 10}}));
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"user":"ada"}"#;
    // The same question, keys in another order and another user: the same key.
    let same = r#"{"messages":[{"content":"hi","role":"user"}],"model":"m","user":"bob"}"#;
    let (leader, action) = post_until_body(&mut host, body);
    assert_eq!(action, Action::Continue, "the first miss leads");
    let (follower, action) = post_until_body(&mut host, same);
    assert_eq!(action, Action::Pause, "the second waits, its body held");
    // Another body is another key: it leads its own.
    let (other, action) = post_until_body(&mut host, r#"{"model":"m","messages":[{"role":"user","content":"bye"}]}"#);
    assert_eq!(action, Action::Continue, "another body is not collapsed");
    assert_eq!(host.tick_period(), Some(Duration::from_millis(10)));
    assert!(host.tick());
    assert!(host.stream_by_id(follower).expect("alive").local_response().is_none(), "still waiting");
    let mut lead = host.stream_by_id(leader).expect("alive");
    lead.send_response_headers(&[(":status", "200"), ("content-type", "application/json")], false);
    assert_eq!(lead.response_header("x-cache-status").as_deref(), Some("MISS"));
    lead.send_response_body(b"{\"answer\":1}", true);
    lead.finish();
    assert!(host.tick());
    let mut waited = host.stream_by_id(follower).expect("alive");
    let answer = waited.local_response().expect("answered from the cache");
    assert_eq!((answer.text().as_str(), answer.header("x-cache-status")), ("{\"answer\":1}", Some("HIT")));
    assert!(!waited.request_resumed(), "nothing went upstream");
    // The local answer goes through the response callbacks; nothing is captured for it.
    waited.send_response_headers(&[(":status", "200")], false);
    waited.send_response_body(b"{\"answer\":1}", true);
    waited.finish();
    host.stream_by_id(other).expect("alive").finish();
    assert_eq!(host.metric("response_cache_collapsed"), Some(1));
    assert_eq!(host.metric("response_cache_hits"), Some(1));
    assert_eq!(host.metric("response_cache_misses"), Some(2));
    assert_eq!(host.tick_period(), None, "the tick stops when nobody waits");
}

#[test]
fn a_waiting_post_goes_upstream_itself_when_the_lead_ends_or_its_wait_does() {
    let mut host = host(json!({"methods": ["POST"], "collapse": {"timeout_ms": 100, "poll_ms": 10}}));
    let body = r#"{"model":"m","messages":[{"role":"user","content":"slow"}]}"#;
    // A leader that never answers: the follower is resumed after the bound, with its body, as a miss.
    let (_leader, _) = post_until_body(&mut host, body);
    let (follower, action) = post_until_body(&mut host, body);
    assert_eq!(action, Action::Pause);
    for _ in 0..10 {
        host.tick();
    }
    let mut resumed = host.stream_by_id(follower).expect("alive");
    assert!(resumed.request_resumed() && resumed.local_response().is_none(), "resumed upstream");
    assert_eq!(resumed.request_body(), body.as_bytes(), "its body goes on as it came");
    resumed.send_response_headers(&[(":status", "500")], true);
    assert_eq!(resumed.response_header("x-cache-status").as_deref(), Some("MISS"));
    resumed.finish();
    assert_eq!(host.metric("response_cache_collapse_timeouts"), Some(1));
    assert_eq!(host.tick_period(), None);

    // A leader whose answer is not cacheable ends its lead: the follower goes upstream without a timeout.
    let body = r#"{"model":"m","messages":[{"role":"user","content":"error"}]}"#;
    let (leader, _) = post_until_body(&mut host, body);
    let (follower, action) = post_until_body(&mut host, body);
    assert_eq!(action, Action::Pause);
    let mut lead = host.stream_by_id(leader).expect("alive");
    lead.send_response_headers(&[(":status", "500")], true);
    lead.finish();
    assert!(host.tick());
    assert!(host.stream_by_id(follower).expect("alive").request_resumed());
    assert_eq!(host.metric("response_cache_collapse_timeouts"), Some(1), "not a timeout");

    // Collapsing off: concurrent POSTs all go on.
    let mut host = self::host(json!({"methods": ["POST"], "collapse": {"enabled": false}}));
    for _ in 0..3 {
        assert_eq!(post_until_body(&mut host, body).1, Action::Continue);
    }
    assert_eq!(host.tick_period(), None);
}

#[test]
fn a_waiting_post_whose_client_left_is_forgotten() {
    let mut host = host(json!({"methods": ["POST"], "collapse": {"timeout_ms": 1000, "poll_ms": 10}}));
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let (leader, _) = post_until_body(&mut host, body);
    let (first, action) = post_until_body(&mut host, body);
    assert_eq!(action, Action::Pause);
    let (second, action) = post_until_body(&mut host, body);
    assert_eq!(action, Action::Pause);
    // The first waiter's client leaves: the tick goes on for the second only.
    host.stream_by_id(first).expect("alive").finish();
    assert_eq!(host.tick_period(), Some(Duration::from_millis(10)));
    host.stream_by_id(second).expect("alive").finish();
    assert_eq!(host.tick_period(), None, "nobody waits: the tick stops at once");
    // The leader still stores, and the next identical POST hits.
    let mut lead = host.stream_by_id(leader).expect("alive");
    lead.send_response_headers(OK, false);
    lead.send_response_body(b"stored", true);
    lead.finish();
    let (next, _) = post_until_body(&mut host, body);
    let answer = host.stream_by_id(next).expect("alive").local_response().expect("a hit");
    assert_eq!((answer.text().as_str(), answer.header("x-cache-status")), ("stored", Some("HIT")));
    assert_eq!(host.metric("response_cache_collapsed"), Some(0));
    assert_eq!(host.metric("response_cache_collapse_timeouts"), Some(0));
}

#[test]
fn hits_of_requests_without_a_body_are_declared_to_the_gateway() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use weir_sdk::abi::{MemoAge, MemoSpec};

    let stored_ms = 1_800_000_000_000;
    for memoize in [true, false] {
        let config = json!({"memoize": memoize, "key": {"headers": ["x-lang"], "tenant_header": "x-tenant"}});
        let mut host = host(config);
        let declared: Rc<RefCell<Vec<MemoSpec>>> = Rc::default();
        let seen = declared.clone();
        host.set_foreign_function("weir.memoize_response", move |args| {
            seen.borrow_mut().push(serde_json::from_slice(args).expect("a MemoSpec"));
            Ok(Vec::new())
        });
        assert_eq!(exchange(&mut host, &[], None, OK, "hello").cache, "MISS");
        assert!(declared.borrow().is_empty(), "a miss is not declared");
        host.set_time(UNIX_EPOCH + Duration::from_secs(1_800_000_003));
        assert_eq!(exchange(&mut host, &[], None, OK, "x").cache, "HIT");
        assert_eq!(exchange(&mut host, &[("cache-control", "max-age=10")], None, OK, "x").cache, "HIT");
        if !memoize {
            assert!(declared.borrow().is_empty(), "`memoize: false` declares nothing");
            continue;
        }
        let specs = declared.borrow();
        assert_eq!(specs.len(), 2, "each hit is declared");
        let spec = &specs[0];
        for name in [
            ":method",
            ":path",
            ":authority",
            "accept",
            "pragma",
            "cache-control",
            "x-cache-bypass",
            "x-tenant",
            "x-lang",
        ] {
            assert!(spec.headers.iter().any(|h| h == name), "{name} decides a hit: {:?}", spec.headers);
        }
        assert_eq!(spec.properties, ["weir.consumer"]);
        assert_eq!(spec.expires_unix_ms, stored_ms + 300_000, "the entry's expiry");
        assert_eq!(specs[1].expires_unix_ms, stored_ms + 10_001, "the request's max-age bounds it");
        assert_eq!(spec.age, Some(MemoAge { header: "age".into(), origin_unix_ms: stored_ms }));
        assert_eq!(spec.revalidate_ms, Some(1000));
        let keys: Vec<&str> = spec.shared_data.iter().map(String::as_str).collect();
        assert!(
            keys.len() == 2 && keys[0].starts_with("rc:v1:default:dir:") && keys[1].starts_with("rc:v1:default:d:"),
            "the directory and the part the entry was read from: {keys:?}"
        );
        assert_eq!(spec.counters.len(), 1, "response_cache_hits");
    }
}
