use super::*;
use crate::abi::memo::{ClientRequest, Values};
use crate::abi::HostShared;
use crate::telemetry::metrics::Metrics;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use prometheus_client::metrics::counter::Counter;
use std::time::Duration;

fn request(path: &str, accept: &str) -> Headers {
    let mut map = HeaderMap::new();
    map.insert(HeaderName::from_static("accept"), HeaderValue::from_str(accept).expect("value"));
    Headers::request(b"api.test", path, &Method::GET, false, map)
}

fn info(route: &str, consumer: Option<&str>) -> RequestInfo {
    let info = RequestInfo {
        source: "127.0.0.1:1".parse().expect("addr"),
        destination: "127.0.0.1:2".parse().expect("addr"),
        tls: false,
        protocol: "HTTP/1.1",
        time: std::time::SystemTime::now(),
        route: Arc::from(route),
        cluster: None,
        connection_id: 1,
        started: Instant::now(),
        server_name: None,
        tls_version: None,
        live: Arc::default(),
    };
    if let Some(consumer) = consumer {
        info.live.with_properties(|p| p.insert(b"weir.consumer".to_vec(), consumer.as_bytes().to_vec()));
    }
    info
}

struct Fixture {
    host: Arc<HostShared>,
    hits: Counter,
    answers: Counter,
}

impl Fixture {
    fn new() -> Fixture {
        let host = HostShared::new(Arc::new(Metrics::new()));
        host.data.set("vm", b"entry", b"v1", 0).expect("set");
        Fixture { host, hits: Counter::default(), answers: Counter::default() }
    }

    /// What the filter declares for `headers` (`:path` and `accept`, the consumer, shared data key `entry`).
    fn draft(&self, headers: &Headers, consumer: Option<&str>, valid_for: Duration) -> Box<MemoDraft> {
        let inputs = [":path", "accept"]
            .iter()
            .map(|n| {
                let input = Input::parse(n).expect("input");
                let values = input.values(headers);
                (input, values)
            })
            .collect();
        Box::new(MemoDraft {
            inputs,
            properties: vec![(b"weir.consumer".to_vec(), consumer.map(|c| c.as_bytes().to_vec()))],
            host: self.host.clone(),
            vm_id: Arc::from("vm"),
            shared_data: vec![(b"entry".to_vec(), self.host.data.cas("vm", b"entry"))],
            until: Instant::now() + valid_for,
            age: Some((b"age".to_vec(), Instant::now().checked_sub(Duration::from_secs(7)).expect("uptime"))),
            counters: vec![(self.hits.clone(), 1)],
            answers: self.answers.clone(),
        })
    }
}

fn response(body: &str) -> LocalResponse {
    LocalResponse {
        status: 200,
        headers: vec![(b"x-cache-status".to_vec(), b"HIT".to_vec()), (b"age".to_vec(), b"7".to_vec())],
        body: body.as_bytes().to_vec(),
        details: "hit".into(),
        grpc_status: None,
    }
}

#[test]
fn a_memo_answers_only_requests_that_agree_on_every_input() {
    let f = Fixture::new();
    let mut table = MemoTable::default();
    table.insert(
        f.draft(&request("/a", "text/plain"), Some("ada"), Duration::from_secs(60)),
        "r".into(),
        &response("A"),
        true,
        true,
    );
    assert_eq!(table.len(), 1);
    // (request, route, consumer, answered)
    let table_rows: &[(&str, &str, &str, Option<&str>, bool)] = &[
        ("/a", "text/plain", "r", Some("ada"), true),
        ("/b", "text/plain", "r", Some("ada"), false),
        ("/a", "text/event-stream", "r", Some("ada"), false),
        ("/a", "text/plain", "r", Some("bob"), false),
        ("/a", "text/plain", "r", None, false),
        ("/a", "text/plain", "other", Some("ada"), false),
        ("/a", "text/plain", "r", Some("ada"), true),
    ];
    for (n, (path, accept, route, consumer, answered)) in table_rows.iter().enumerate() {
        let got = table.answer(&request(path, accept), &info(route, *consumer));
        assert_eq!(got.is_some(), *answered, "row {n}");
        if let Some(got) = got {
            assert_eq!(&got.body[..], b"A");
            assert_eq!(got.headers["age"], "7", "Age counts from the origin");
            assert_eq!(got.headers["x-cache-status"], "HIT");
            assert_eq!(&*got.details, "hit");
        }
    }
    assert_eq!((f.hits.get(), f.answers.get()), (2, 2), "the filter's counters and the host's, once per answer");
    assert_eq!(table.len(), 1, "a request that differs leaves the memo in place");
}

#[test]
fn a_memo_is_dropped_when_its_shared_data_changes_or_its_time_is_up() {
    let f = Fixture::new();
    let ada = info("r", Some("ada"));
    let a = request("/a", "x");
    let mut table = MemoTable::default();
    table.insert(f.draft(&a, Some("ada"), Duration::from_secs(60)), "r".into(), &response("A"), true, true);
    assert!(table.answer(&a, &ada).is_some());
    f.host.data.set("vm", b"entry", b"v2", 0).expect("rewrite");
    assert!(table.answer(&a, &ada).is_none(), "the entry changed");
    assert!(table.is_empty(), "and the memo is gone");

    table.insert(f.draft(&a, Some("ada"), Duration::from_millis(30)), "r".into(), &response("A"), true, true);
    assert!(table.answer(&a, &ada).is_some());
    std::thread::sleep(Duration::from_millis(40));
    assert!(table.answer(&a, &ada).is_none(), "its time is up");
    assert!(table.is_empty());

    table.insert(f.draft(&a, Some("ada"), Duration::ZERO), "r".into(), &response("A"), true, true);
    assert!(table.is_empty(), "a memo already out of time is not kept");
}

#[test]
fn the_age_header_is_added_when_the_response_lacks_it() {
    let f = Fixture::new();
    let a = request("/a", "x");
    let mut table = MemoTable::default();
    let mut plain = response("A");
    plain.headers.truncate(1);
    table.insert(f.draft(&a, None, Duration::from_secs(60)), "r".into(), &plain, true, true);
    let got = table.answer(&a, &info("r", None)).expect("answered");
    assert_eq!(got.headers["age"], "7");
}

#[test]
fn bounds_keep_the_newest_memos() {
    let f = Fixture::new();
    let mut table = MemoTable::default();
    for n in 0..MAX_ENTRIES + 10 {
        let headers = request(&format!("/{n}"), "x");
        table.insert(f.draft(&headers, None, Duration::from_secs(60)), "r".into(), &response("A"), true, true);
    }
    assert_eq!(table.len(), MAX_ENTRIES);
    let route = info("r", None);
    assert!(table.answer(&request("/0", "x"), &route).is_none(), "the oldest went first");
    assert!(table.answer(&request(&format!("/{}", MAX_ENTRIES + 9), "x"), &route).is_some());

    // Bytes: a body of more than a quarter of the bound is not kept; a few large ones push the oldest out.
    let mut table = MemoTable::default();
    let big = "b".repeat(MAX_BYTES / 4 + 1);
    table.insert(
        f.draft(&request("/big", "x"), None, Duration::from_secs(60)),
        "r".into(),
        &response(&big),
        true,
        true,
    );
    assert!(table.is_empty());
    let large = "l".repeat(MAX_BYTES / 5);
    for n in 0..6 {
        table.insert(
            f.draft(&request(&format!("/{n}"), "x"), None, Duration::from_secs(60)),
            "r".into(),
            &response(&large),
            true,
            true,
        );
    }
    assert_eq!(table.len(), 4, "five of MAX_BYTES / 5 plus overheads do not fit");
    assert!(table.answer(&request("/5", "x"), &route).is_some());
    assert!(table.answer(&request("/1", "x"), &route).is_none());
}

#[test]
fn only_memos_of_a_first_filter_that_the_request_policy_cannot_change_answer_early() {
    let f = Fixture::new();
    let map = request("/a", "x").map().clone();
    let client =
        ClientRequest { method: &Method::GET, path: "/a?b=1", authority: b"api.test", tls: false, headers: &map };
    let seen = Headers::request(b"api.test", "/a?b=1", &Method::GET, false, map.clone());
    let forwarded = |draft: &mut MemoDraft| {
        let name = Input::parse("x-forwarded-for").expect("input");
        draft.inputs.push((name, Values::Header(Vec::new())));
    };
    let consumer = |draft: &mut MemoDraft| draft.properties[0].1 = Some(b"ada".to_vec());
    let nothing = |_: &mut MemoDraft| {};
    // (change to the draft, first filter, proxied route, answers early)
    type Change = fn(&mut MemoDraft);
    let rows: &[(Change, bool, bool, bool)] = &[
        (nothing, true, true, true),
        (nothing, false, true, false),
        (forwarded, true, true, false),
        (forwarded, true, false, true),
        (consumer, true, true, false),
    ];
    for (n, (change, first, proxied, early)) in rows.iter().enumerate() {
        let mut table = MemoTable::default();
        let mut draft = f.draft(&seen, None, Duration::from_secs(60));
        change(&mut draft);
        table.insert(draft, "r".into(), &response("A"), *first, *proxied);
        assert_eq!(table.answer_early(&client, "r").is_some(), *early, "row {n}");
        assert!(table.answer_early(&client, "other").is_none(), "row {n}: another route");
    }
}
