//! `Headers`: reads, changes, pseudo-headers, trailers, and refused changes.

use std::cell::RefCell;
use std::rc::Rc;

use weir_sdk::prelude::*;

use super::{scripted, Phase};

const REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/users?id=7"),
    (":authority", "api.example.com"),
    (":scheme", "https"),
    ("accept", "text/html"),
    ("x-dup", "a"),
    ("X-Dup", "b"),
];

/// What, the change, the headers after it.
type Row = (&'static str, fn(Headers), &'static [(&'static str, &'static str)]);

#[test]
fn reads_are_case_insensitive_and_return_the_first_value() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let out = seen.clone();
    let mut host = scripted(move |phase| {
        if let Phase::RequestHeaders(h, end_of_stream) = phase {
            let mut seen = out.borrow_mut();
            seen.push(format!("{:?}", h.get("ACCEPT")));
            seen.push(format!("{:?}", h.get("x-dup")));
            seen.push(format!("{:?}", h.get_bytes("x-dup")));
            seen.push(format!("{:?}", h.get_all("x-dup")));
            seen.push(format!("{:?}", h.get("missing")));
            seen.push(format!("{} {}", h.contains("accept"), h.contains("missing")));
            seen.push(format!("{:?} {:?} {:?} {:?}", h.method(), h.path(), h.authority(), h.scheme()));
            seen.push(format!("{} {end_of_stream}", h.all().len()));
        }
        Action::Continue
    });
    assert_eq!(host.stream().send_request_headers(REQUEST, true), Action::Continue);
    let expected = [
        r#"Some("text/html")"#,
        r#"Some("a")"#,
        "Some([97])",
        r#"["a", "b"]"#,
        "None",
        "true false",
        r#"Some("GET") Some("/users?id=7") Some("api.example.com") Some("https")"#,
        "7 true",
    ];
    assert_eq!(*seen.borrow(), expected);
}

#[test]
fn changes_are_what_the_next_hop_sees() {
    let table: &[Row] = &[
        ("set replaces every value", |h| h.set("x-dup", "c"), &[("accept", "text/html"), ("x-dup", "c")]),
        (
            "set adds a missing name",
            |h| h.set("x-new", "1"),
            &[("accept", "text/html"), ("x-dup", "a"), ("X-Dup", "b"), ("x-new", "1")],
        ),
        (
            "add appends",
            |h| h.add("x-dup", "c"),
            &[("accept", "text/html"), ("x-dup", "a"), ("X-Dup", "b"), ("x-dup", "c")],
        ),
        ("remove removes every value", |h| h.remove("X-DUP"), &[("accept", "text/html")]),
        (
            "remove of a missing name is fine",
            |h| h.remove("nope"),
            &[("accept", "text/html"), ("x-dup", "a"), ("X-Dup", "b")],
        ),
        ("set_all replaces the map", |h| h.set_all(&[("only", "1")]), &[("only", "1")]),
        (
            "set_bytes keeps bytes",
            |h| h.set_bytes("accept", b"*/*"),
            &[("accept", "*/*"), ("x-dup", "a"), ("X-Dup", "b")],
        ),
    ];
    for &(what, change, expected) in table {
        let mut host = scripted(move |phase| {
            if let Phase::RequestHeaders(headers, _) = phase {
                change(headers);
            }
            Action::Continue
        });
        let mut stream = host.stream();
        stream.send_request_headers(&[("accept", "text/html"), ("x-dup", "a"), ("X-Dup", "b")], false);
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(stream.request_headers(), expected, "{what}");
    }
}

#[test]
fn response_headers_and_both_trailers_use_their_own_maps() {
    let mut host = scripted(|phase| {
        match phase {
            Phase::ResponseHeaders(h, _) => {
                assert_eq!(h.status(), Some(404));
                h.set(":status", "200");
                h.add("x-from", "filter");
            }
            Phase::RequestTrailers(t) => t.set("grpc-status", "0"),
            Phase::ResponseTrailers(t) => {
                assert_eq!(t.get("x-checksum").as_deref(), Some("abc"));
                http::response_trailers().remove("x-checksum");
            }
            _ => {}
        }
        Action::Continue
    });
    let mut stream = host.stream();
    stream.send_request_trailers(&[("grpc-status", "2")]);
    stream.send_response_headers(&[(":status", "404")], false);
    stream.send_response_trailers(&[("x-checksum", "abc"), ("x-keep", "1")]);
    assert_eq!(stream.request_trailers(), [("grpc-status".to_string(), "0".to_string())]);
    assert_eq!(stream.response_header(":status").as_deref(), Some("200"));
    assert_eq!(stream.response_header("x-from").as_deref(), Some("filter"));
    assert_eq!(stream.response_trailers(), [("x-keep".to_string(), "1".to_string())]);
}

#[test]
fn a_change_the_host_refuses_is_logged_not_fatal() {
    // From a tick there is no stream: the host refuses header changes with BadArgument.
    let mut host = scripted(|phase| {
        match phase {
            Phase::RequestHeaders(..) => time::set_tick_period(std::time::Duration::from_secs(1)),
            Phase::Tick => {
                http::request_headers().set("x-a", "1");
                assert_eq!(http::request_headers().get("x-a"), None);
                assert!(http::request_headers().all().is_empty());
            }
            _ => {}
        }
        Action::Continue
    });
    host.stream().send_request_headers(&[], true);
    assert!(host.tick());
    assert!(host.logged("weir-sdk: set_header on HttpRequestHeaders failed: BadArgument"), "{:?}", host.logs());
}
