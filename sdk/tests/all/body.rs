//! `Body`: reading, replacing ranges, appending, prepending, JSON, and held chunks.

use weir_sdk::prelude::*;

use super::{scripted, Phase};

#[test]
fn edits_splice_the_buffer() {
    type Edit = fn(Body);
    let table: &[(&str, Edit, &str)] = &[
        ("replace all", |b| b.replace(b"new"), "new"),
        ("replace a range", |b| b.replace_range(6, 5, b"there"), "hello there"),
        ("replace past the end clamps", |b| b.replace_range(6, 100, b"!"), "hello !"),
        ("append", |b| b.append(b"!"), "hello world!"),
        ("prepend", |b| b.prepend(b"> "), "> hello world"),
        ("insert", |b| b.replace_range(5, 0, b","), "hello, world"),
        ("nothing", |_| {}, "hello world"),
    ];
    for &(what, edit, expected) in table {
        let mut host = scripted(move |phase| {
            if let Phase::ResponseBody(body, _) = phase {
                edit(body);
            }
            Action::Continue
        });
        let mut stream = host.stream();
        assert_eq!(stream.send_response_body(b"hello world", true), Action::Continue, "{what}");
        assert_eq!(String::from_utf8(stream.response_body()).unwrap(), expected, "{what}");
    }
}

#[test]
fn reads_see_the_chunk_or_everything_held() {
    let mut host = scripted(|phase| match phase {
        Phase::RequestBody(body, false) => {
            assert_eq!(body.buffer_type(), weir_sdk::abi::BufferType::HttpRequestBody);
            Action::Pause
        }
        Phase::RequestBody(body, true) => {
            assert_eq!(body.len(), 13);
            assert!(!body.is_empty());
            assert_eq!(body.range(0, 5), b"{\"a\":");
            assert_eq!(body.range(8, 100), b"2]}  ");
            assert_eq!(body.range(99, 1), b"");
            let value: serde_json::Value = body.json().unwrap();
            assert_eq!(value["a"][1], 2);
            body.replace(b"{}");
            Action::Continue
        }
        _ => Action::Continue,
    });
    let mut stream = host.stream();
    assert_eq!(stream.send_request_body(b"{\"a\":[1,", false), Action::Pause);
    assert_eq!(stream.send_request_body(b"2]}", false), Action::Pause);
    assert_eq!(stream.request_body(), b"{\"a\":[1,2]}");
    assert_eq!(stream.send_request_body(b"  ", true), Action::Continue);
    assert_eq!(stream.request_body(), b"{}");
}

#[test]
fn after_a_continue_the_next_call_gets_only_its_chunk() {
    let mut host = scripted(|phase| {
        if let Phase::ResponseBody(body, _) = phase {
            body.prepend(b"[");
        }
        Action::Continue
    });
    let mut stream = host.stream();
    stream.send_response_body(b"one", false);
    assert_eq!(stream.response_body(), b"[one");
    stream.send_response_body(b"two", true);
    assert_eq!(stream.response_body(), b"[two");
}
