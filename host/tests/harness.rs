//! `weir::harness`: the test filters of `tests/filters` (crates.io proxy-wasm SDK, built to wasm32-wasip1 by
//! the `weir-tests` build script) driven through Weir's own wasm runtime, in-process, with no network.

use std::time::Duration;
use weir::config::FailurePolicy;
use weir::harness::{FilterHarness, FilterSpec, MetricValue, Origin, Request, Response};
use weir_tests::filters;

fn headers(name: &str) -> FilterSpec {
    FilterSpec::new(filters::HEADERS_WASM).configuration(format!(r#"{{"name": "{name}"}}"#)).name(name)
}

#[test]
fn headers_filter_edits_the_request_and_the_response_and_logs_at_the_end() {
    let h = FilterHarness::load(filters::HEADERS_WASM, r#"{"name": "t"}"#).unwrap();
    let mut s = h.request(
        Request::get("/users?id=1").authority("api.test").header("x-replace", "old").header("x-remove", "gone"),
    );
    assert!(!s.is_paused());
    let up = s.upstream_request().expect("forwarded").clone();
    assert_eq!(up.header("x-wasm-name"), Some("t"));
    assert_eq!(up.header("x-replace"), Some("replaced-by-t"));
    assert_eq!(up.header("x-remove"), None);
    assert_eq!(up.header("x-wasm-path"), Some("/users?id=1"));
    assert_eq!(up.header("x-wasm-authority"), Some("api.test"));
    assert_eq!(up.header("x-wasm-method"), Some("GET"));
    assert_eq!((up.method.as_str(), up.path.as_str(), up.authority.as_str()), ("GET", "/users?id=1", "api.test"));

    let client = s.respond(Response::ok().header("x-up", "1").body("payload")).expect("not held").clone();
    assert_eq!(client.status, 200);
    assert_eq!(client.origin, Origin::Upstream);
    assert_eq!(client.header("x-up"), Some("1"));
    assert_eq!(client.header_all("x-wasm-order"), ["t"]);
    assert_eq!(client.header("x-wasm-response-name"), Some("t"));
    assert_eq!(client.body, b"payload");
    assert!(client.reset.is_none());

    assert!(!h.logged("done t"), "on_log runs only when the stream ends");
    assert_eq!(s.finish(), 1, "one filter's context ended: on_log, on_done, on_delete");
    assert_eq!(s.finish(), 0, "once");
    assert!(s.is_finished());
    assert!(h.logs().iter().any(|l| l.message == "done t /users?id=1"
        && l.level == tracing::Level::INFO
        && l.filter == "harness/headers"));
    assert_eq!(s.client_response().map(|c| c.status), Some(200), "still readable after the end");
}

#[test]
fn a_local_response_goes_through_the_response_callbacks_of_the_filters_before_it() {
    let h = FilterHarness::builder().filter(headers("a")).filter(headers("b")).build().unwrap();
    assert_eq!(h.filter_names(), ["a", "b"]);

    let mut s = h.request(Request::get("/x"));
    let up = s.upstream_request().expect("forwarded").clone();
    assert_eq!(up.header_all("x-wasm-name"), ["a", "b"], "request callbacks in chain order");
    let client = s.respond(Response::ok()).unwrap();
    assert_eq!(client.header_all("x-wasm-order"), ["b", "a"], "response callbacks last filter first");
    assert_eq!(s.finish(), 2);
    let ends: Vec<String> = h.logs().into_iter().filter(|l| l.message.starts_with("done")).map(|l| l.message).collect();
    assert_eq!(ends, ["done b /x", "done a /x"], "on_log last filter first");

    // `a` answers /local: `b` never sees the request, and only `a`'s response callback runs.
    let mut local = h.request(Request::get("/local"));
    assert!(local.upstream_request().is_none());
    let answer = local.client_response().expect("answered").clone();
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body_text(), "local from a\n");
    assert_eq!(answer.header("x-local"), Some("a"));
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    assert_eq!(answer.header_all("x-wasm-order"), ["a"]);
    assert!(matches!(answer.origin, Origin::LocalResponse(_)));
    assert_eq!(local.finish(), 1, "only `a` saw the request");
}

#[test]
fn a_refused_configuration_fails_the_load_with_the_filters_words() {
    let err = FilterHarness::load(filters::ADD_HEADER_WASM, "[1]").err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("rejected its configuration"), "{text}");
    assert!(text.contains("configuration is not a JSON object"), "{text}");
}

#[test]
fn add_header_adds_one_header_each_way() {
    let h = FilterHarness::load(filters::ADD_HEADER_WASM, r#"{"name": "n"}"#).unwrap();
    let mut s = h.request(Request::get("/"));
    assert_eq!(s.upstream_request().unwrap().header("x-add-header"), Some("n"));
    assert_eq!(s.respond(Response::ok()).unwrap().header("x-add-header-order"), Some("n"));
}

fn callout_harness() -> FilterHarness {
    FilterHarness::builder()
        .filter(FilterSpec::new(filters::CALLOUT_WASM).configuration(r#"{"cluster": "auth", "path": "/check"}"#))
        .cluster("auth")
        .build()
        .unwrap()
}

#[test]
fn callout_denial_is_answered_with_403_when_the_callout_answers_403() {
    let h = callout_harness();
    let mut s = h.request(Request::get("/private"));
    assert!(s.is_paused(), "waits for the callout");
    let callouts = h.callouts();
    assert_eq!(callouts.len(), 1);
    let c = &callouts[0];
    assert_eq!((c.cluster.as_str(), c.method.as_str(), c.path.as_str()), ("auth", "GET", "/check"));
    assert_eq!(c.authority, "auth.internal");
    assert_eq!(c.header("x-original-path"), Some("/private"));
    assert_eq!(c.timeout, Some(Duration::from_secs(5)));

    h.answer_callout(c.token, Response::new(403).body("no"));
    assert!(h.callouts().is_empty());
    assert!(!s.is_paused());
    let client = s.client_response().expect("denied").clone();
    assert_eq!(client.status, 403);
    assert_eq!(client.header("x-callout-status"), Some("403"));
    assert_eq!(client.body_text(), "denied\n");
    assert!(s.upstream_request().is_none());
}

#[test]
fn callout_200_resumes_the_request_with_the_answer_and_a_failed_callout_gets_502() {
    let h = callout_harness();
    let mut allowed = h.request(Request::get("/a"));
    let mut failed = h.request(Request::get("/b"));
    let tokens: Vec<u32> = h.callouts().iter().map(|c| c.token).collect();
    assert_eq!(tokens.len(), 2);
    h.answer_callout(tokens[0], Response::ok().body(" alice \n"));
    h.fail_callout(tokens[1]);
    assert_eq!(allowed.upstream_request().expect("resumed").header("x-callout-body"), Some("alice"));
    let client = failed.client_response().expect("answered").clone();
    assert_eq!((client.status, client.body_text().as_str()), (502, "callout failed\n"));
}

#[test]
fn a_callout_to_an_undeclared_cluster_fails_as_in_the_gateway() {
    let h = FilterHarness::load(filters::CALLOUT_WASM, r#"{"cluster": "nowhere"}"#).unwrap();
    let mut s = h.request(Request::get("/"));
    assert!(h.callouts().is_empty());
    assert_eq!(s.client_response().expect("answered").status, 500);
}

#[test]
fn pause_resume_resumes_on_tick() {
    let h = FilterHarness::load(filters::PAUSE_RESUME_WASM, "").unwrap();
    let mut s = h.request(Request::get("/held").header("x-hold-ms", "0"));
    assert!(s.is_paused());
    h.tick();
    assert!(!s.is_paused());
    assert!(s.upstream_request().is_some());
    assert_eq!(s.respond(Response::ok()).unwrap().header("x-held"), Some("yes"));
    assert!(h.logged("resumed"), "{:?}", h.logs());

    // A hold the filter measures on the wall clock: the 10 ms ticks resume it once that has passed.
    let mut later = h.request(Request::get("/later").header("x-hold-ms", "40"));
    h.advance(Duration::from_millis(20));
    assert!(later.is_paused(), "not yet");
    std::thread::sleep(Duration::from_millis(50));
    h.advance(Duration::from_millis(10));
    assert!(!later.is_paused());

    let mut free = h.request(Request::get("/free"));
    assert!(!free.is_paused(), "no x-hold-ms: not held");
}

#[test]
fn body_filter_uppercases_the_held_body_and_appends_to_the_response() {
    let h = FilterHarness::load(filters::BODY_WASM, "").unwrap();
    let mut s = h.request(Request::post("/up").header("content-length", "12").body("hello, ").body("world"));
    let up = s.upstream_request().expect("forwarded").clone();
    assert_eq!(up.header("content-length"), None);
    assert_eq!(up.body, b"HELLO, WORLD");
    assert_eq!(up.chunks, [b"HELLO, WORLD".to_vec()], "held until the end, then sent at once");

    let client = s.respond(Response::ok().header("content-length", "6").body("abc").body("def")).unwrap().clone();
    assert_eq!(client.header("content-length"), None);
    assert_eq!(client.chunks, [b"abc".to_vec(), b"def[wasm-end]".to_vec()], "streamed chunk by chunk");

    // With trailers the last body callback has end_of_stream = false: the filter holds the body, uppercases it
    // from its trailers callback (the held body is its body buffer there, as in Envoy), and the held body goes
    // on once that callback continues, before the trailers.
    let mut t = h.request(Request::post("/t").body("abc").trailer("x-sum", "1"));
    let up = t.upstream_request().expect("forwarded").clone();
    assert_eq!(up.chunks, [b"ABC".to_vec()]);
    assert_eq!(up.trailer("x-sum"), Some("1"));
}

#[test]
fn state_filter_shared_data_queues_and_metrics_are_visible_to_the_test() {
    let h = FilterHarness::load(filters::STATE_WASM, "").unwrap();
    h.set_shared_data("hits", "41");
    let mut s = h.request(Request::get("/count").header("x-size", "7"));
    let answer = s.client_response().expect("answered").clone();
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["hits"], 42);
    assert_eq!(json["counter"], 1);
    assert_eq!(json["gauge"], 1);
    assert_eq!(json["request_path"], "/count");
    assert_eq!(json["plugin_name"], "state");
    assert_eq!(json["source_address"], "127.0.0.1:40000");
    assert_eq!(h.shared_data("hits").unwrap().0, b"42");
    // The path it enqueued was delivered to on_queue_ready once the stream had run.
    assert_eq!(h.shared_data("dequeued").unwrap().0, b"1");
    assert_eq!(h.metric("test_requests_total"), Some(MetricValue::Counter(1)));
    assert_eq!(h.metric("test_in_flight"), Some(MetricValue::Gauge(1)));
    assert_eq!(h.metric("test_body_sizes"), Some(MetricValue::Histogram { count: 1, sum: 7.0 }));
    assert_eq!(h.metric("no_such_metric"), None);
    s.finish();
    assert_eq!(h.metric("test_in_flight"), Some(MetricValue::Gauge(0)), "on_log ran");

    // The test can feed the queue too.
    assert!(h.enqueue("events", "from the test"));
    assert_eq!(h.shared_data("dequeued").unwrap().0, b"2");
    assert!(!h.enqueue("no-such-queue", "x"));
    // on_tick logs `tick` on the first tick only.
    h.advance(Duration::from_millis(120));
    assert_eq!(h.logs().iter().filter(|l| l.message == "tick").count(), 1);
}

#[test]
fn trailers_filter_edits_trailers_and_pauses_them_on_a_callout() {
    let h = FilterHarness::builder()
        .filter(FilterSpec::new(filters::TRAILERS_WASM).configuration(r#"{"name": "t", "cluster": "svc"}"#))
        .cluster("svc")
        .build()
        .unwrap();
    let mut s = h.request(
        Request::post("/")
            .header("x-t-pause", "callout")
            .body("b")
            .trailer("x-replace", "old")
            .trailer("x-remove", "1"),
    );
    let up = s.upstream_request().expect("forwarded").clone();
    assert_eq!(up.trailer("x-trailer-order"), Some("t"));
    assert_eq!(up.trailer("x-replace"), Some("replaced-by-t"));
    assert_eq!(up.trailer("x-remove"), None);
    assert_eq!(up.trailer("x-body-eos-t"), Some("false"));

    assert!(s.respond(Response::ok().body("r").trailer("x-up-trailer", "u")).is_none(), "held in its trailers");
    assert!(s.is_paused());
    let callout = h.callouts().pop().expect("a callout from on_response_trailers");
    assert_eq!(callout.path, "/callout");
    h.answer_callout(callout.token, Response::new(204));
    let client = s.client_response().expect("resumed").clone();
    assert_eq!(client.body, b"r");
    assert_eq!(client.trailer("x-resumed-by"), Some("callout 204"));
    assert_eq!(client.trailer("x-property-t"), Some("u"));
}

#[test]
fn a_trap_fails_the_stream_by_the_failure_policy() {
    let closed = FilterHarness::load(filters::PANIC_WASM, "").unwrap();
    let mut s = closed.request(Request::get("/").header("x-panic", "1"));
    let client = s.client_response().expect("failed").clone();
    assert_eq!(client.status, 503);
    assert_eq!(client.origin, Origin::Error("filter_failed".into()));
    assert!(closed.logs().iter().any(|l| l.message.contains("boom from wasm")), "{:?}", closed.logs());
    // The VM is replaced for the next request.
    std::thread::sleep(Duration::from_millis(20));
    let mut next = closed.request(Request::get("/"));
    assert!(next.upstream_request().is_some());

    let open = FilterHarness::builder()
        .filter(FilterSpec::new(filters::PANIC_WASM).failure_policy(FailurePolicy::FailOpen))
        .filter(headers("after"))
        .build()
        .unwrap();
    let mut s = open.request(Request::get("/").header("x-panic", "1"));
    assert_eq!(s.upstream_request().expect("fail open: as if absent").header("x-wasm-name"), Some("after"));
}

#[test]
fn modules_load_from_bytes() {
    let bytes = std::fs::read(filters::ADD_HEADER_WASM).unwrap();
    let h = FilterHarness::builder().filter(FilterSpec::new(bytes).configuration(r#"{"name": "b"}"#)).build().unwrap();
    assert_eq!(h.filter_names(), ["filter0"]);
    assert_eq!(h.request(Request::get("/")).upstream_request().unwrap().header("x-add-header"), Some("b"));
}
