//! The hello filter's logic, natively, on the SDK's fake host.

use super::Hello;
use weir_sdk::testing::FakeHost;
use weir_sdk::Action;

#[test]
fn answers_hello_and_lets_the_rest_through() {
    let table: &[(&str, &str, Option<&str>)] = &[
        ("", "/hello", Some(r#"{"message":"Hello, world!"}"#)),
        ("", "/hello/ada?x=1", Some(r#"{"message":"Hello, ada!"}"#)),
        (r#"{"greeting": "Bonjour"}"#, "/hello/ada", Some(r#"{"message":"Bonjour, ada!"}"#)),
        ("", "/", None),
        ("", "/hello/", None),
        ("", "/hello/a/b", None),
        ("", "/helloworld", None),
    ];
    for &(config, path, answer) in table {
        let mut host = FakeHost::<Hello>::new();
        assert!(host.configure(config), "{config}");
        let mut request = host.stream();
        let action = request.send_request_headers(&[(":method", "GET"), (":path", path)], true);
        let local = request.local_response();
        assert_eq!(local.as_ref().map(|r| r.text()).as_deref(), answer, "{path}");
        match local {
            Some(local) => {
                assert_eq!(action, Action::Pause, "{path}");
                assert_eq!((local.status, local.header("content-type")), (200, Some("application/json")));
            }
            None => assert_eq!(action, Action::Continue, "{path}"),
        }
    }
}

#[test]
fn refuses_an_unknown_field() {
    let mut host = FakeHost::<Hello>::new();
    assert!(!host.configure(r#"{"greting": "hi"}"#));
    assert!(host.logged("unknown field `greting`, expected `greeting`"), "{:?}", host.logs());
}
