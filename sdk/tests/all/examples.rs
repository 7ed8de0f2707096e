//! The example filters of `sdk/examples`, compiled natively from the same source and run on the fake host.

#[path = "../../examples/hello.rs"]
#[allow(dead_code)]
mod hello;

use weir_sdk::testing::FakeHost;
use weir_sdk::Action;

/// Configuration, path, action, local answer, `x-hello` tag.
type Row = (&'static str, &'static str, Action, Option<&'static str>, Option<&'static str>);

#[test]
fn hello_answers_hello_and_tags_the_rest() {
    let table: &[Row] = &[
        ("", "/hello", Action::Pause, Some("hello from weir"), None),
        (r#"{"greeting": "hi"}"#, "/hello", Action::Pause, Some("hi"), None),
        ("", "/other", Action::Continue, None, Some("1")),
    ];
    for &(config, path, action, answer, tag) in table {
        let mut host = FakeHost::<hello::Hello>::new();
        assert!(host.configure(config), "{config}");
        let mut stream = host.stream();
        assert_eq!(stream.send_request_headers(&[(":method", "GET"), (":path", path)], true), action, "{path}");
        let response = stream.local_response();
        assert_eq!(response.as_ref().map(|r| r.text()).as_deref(), answer, "{path}");
        if let Some(response) = response {
            assert_eq!((response.status, response.header("content-type")), (200, Some("text/plain")));
        }
        assert_eq!(stream.request_header("x-hello").as_deref(), tag, "{path}");
    }
}

#[test]
fn hello_refuses_a_greeting_that_is_not_a_string() {
    let mut host = FakeHost::<hello::Hello>::new();
    assert!(!host.configure(r#"{"greeting": 7}"#));
    assert!(host.logged("invalid type: integer `7`, expected a string at line 1 column 14"), "{:?}", host.logs());
}

#[path = "../../examples/quota.rs"]
#[allow(dead_code)]
mod quota;

#[test]
fn quota_checks_auth_counts_clients_and_denies_over_the_limit() {
    let mut host = FakeHost::<quota::Quota>::new();
    assert!(host.configure(r#"{"limit": 2, "auth_cluster": "auth"}"#));
    assert_eq!(host.tick_period(), Some(std::time::Duration::from_secs(10)));
    host.set_property(&["source", "address"], "10.0.0.1:5000");

    // Allowed by auth: resumed with the user.
    let mut stream = host.stream();
    assert_eq!(stream.send_request_headers(&[(":path", "/a"), ("authorization", "Bearer t")], true), Action::Pause);
    let callout = stream.callouts().pop().unwrap();
    assert_eq!((callout.cluster.as_str(), callout.header("authorization")), ("auth", Some("Bearer t")));
    stream.respond(callout.token, 200, &[("x-user", "ada")], b"");
    assert!(stream.request_resumed());
    assert_eq!(stream.request_header("x-user").as_deref(), Some("ada"));
    assert!(stream.finish());

    // Refused by auth: 403.
    let mut stream = host.stream();
    stream.send_request_headers(&[(":path", "/b")], true);
    let token = stream.callouts()[0].token;
    stream.respond(token, 401, &[], b"");
    assert_eq!(stream.local_response().unwrap().status, 403);

    // Third request from the same client: over the limit, no callout.
    let mut stream = host.stream();
    assert_eq!(stream.send_request_headers(&[(":path", "/c")], true), Action::Pause);
    let response = stream.local_response().unwrap();
    assert_eq!((response.status, response.text().as_str()), (429, r#"{"error":"quota exceeded","used":3}"#));
    assert!(stream.callouts().is_empty());
    assert_eq!(stream.metric("quota_denied"), Some(1));
    assert_eq!(stream.shared_data("quota/10.0.0.1"), Some(b"3".to_vec()));

    // The tick drains the events the allowed requests queued.
    assert_eq!(host.queue("quota_events").len(), 2);
    assert!(host.tick());
    assert!(host.logged("quota: 2 events since the last tick"), "{:?}", host.logs());
}

#[test]
fn quota_rewrites_500_bodies() {
    let mut host = FakeHost::<quota::Quota>::new();
    assert!(host.configure(r#"{"limit": 10, "auth_cluster": "auth"}"#));
    let mut stream = host.stream();
    stream.send_request_headers(&[(":path", "/")], true);
    stream.send_response_headers(&[(":status", "500")], false);
    assert_eq!(stream.send_response_body(b"stack trace", true), Action::Continue);
    assert_eq!(stream.response_body(), b"internal error\n");
}
