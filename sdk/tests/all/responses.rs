//! Local responses: `send_response`, `send_response_with_details`, `send_json`; stream control.

use weir_sdk::prelude::*;

use super::{scripted, Phase};

/// What, how, status, headers, body, details.
type Row = (&'static str, fn() -> Action, u16, &'static [(&'static str, &'static str)], &'static str, &'static str);

#[test]
fn local_responses_carry_status_headers_body_and_details() {
    let table: &[Row] = &[
        (
            "plain",
            || http::send_response(403, &[("x-why", "no")], b"denied\n"),
            403,
            &[("x-why", "no")],
            "denied\n",
            "",
        ),
        ("empty", || http::send_response(204, &[], b""), 204, &[], "", ""),
        (
            "details",
            || http::send_response_with_details(429, &[], b"slow down", "rate_limited"),
            429,
            &[],
            "slow down",
            "rate_limited",
        ),
        (
            "json",
            || http::send_json(401, &serde_json::json!({"error": "missing token"})),
            401,
            &[("content-type", "application/json")],
            r#"{"error":"missing token"}"#,
            "",
        ),
    ];
    for &(what, send, status, headers, body, details) in table {
        let mut host = scripted(move |phase| match phase {
            Phase::RequestHeaders(..) => send(),
            _ => Action::Continue,
        });
        let mut stream = host.stream();
        assert_eq!(stream.send_request_headers(&[(":path", "/")], true), Action::Pause, "{what}");
        let response = stream.local_response().expect(what);
        assert_eq!(response.status, status, "{what}");
        let expected: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(response.headers, expected, "{what}");
        assert_eq!(response.text(), body, "{what}");
        assert_eq!(response.details, details, "{what}");
        assert_eq!(stream.calls().iter().filter(|c| **c == "proxy_send_local_response").count(), 1, "{what}");
    }
}

#[test]
fn only_the_first_local_response_counts() {
    let mut host = scripted(|phase| match phase {
        Phase::RequestHeaders(..) => {
            http::send_response(401, &[], b"first");
            http::send_response(500, &[], b"second")
        }
        _ => Action::Continue,
    });
    let mut stream = host.stream();
    stream.send_request_headers(&[], true);
    let response = stream.local_response().unwrap();
    assert_eq!((response.status, response.text().as_str()), (401, "first"));
    assert_eq!(response.header("CONTENT-TYPE"), None);
}

#[test]
fn resume_close_and_route_cache_reach_the_host() {
    let mut host = scripted(|phase| {
        match phase {
            Phase::RequestHeaders(..) => {
                http::request_headers().set(":path", "/v2");
                http::clear_route_cache();
                return Action::Pause;
            }
            Phase::RequestBody(..) => http::resume_request(),
            Phase::ResponseHeaders(..) => http::resume_response(),
            Phase::ResponseBody(..) => http::close(),
            _ => {}
        }
        Action::Continue
    });
    let cleared = std::rc::Rc::new(std::cell::Cell::new(0));
    let count = cleared.clone();
    host.set_foreign_function("clear_route_cache", move |args| {
        assert!(args.is_empty());
        count.set(count.get() + 1);
        Ok(Vec::new())
    });
    let mut stream = host.stream();
    stream.send_request_headers(&[(":path", "/v1")], false);
    assert_eq!(cleared.get(), 1);
    assert_eq!(stream.request_header(":path").as_deref(), Some("/v2"));
    assert!(!stream.request_resumed());
    stream.send_request_body(b"", true);
    assert!(stream.request_resumed());
    assert!(!stream.response_resumed());
    stream.send_response_headers(&[(":status", "200")], false);
    assert!(stream.response_resumed());
    assert!(!stream.closed());
    stream.send_response_body(b"", true);
    assert!(stream.closed());
    assert!(stream.calls().contains(&"proxy_call_foreign_function"));
    assert!(!stream.logged("failed"), "{:?}", stream.logs());
}
