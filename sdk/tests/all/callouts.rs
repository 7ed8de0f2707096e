//! HTTP callouts: the request sent, answers to closures and trait methods, failures, and refusals.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use weir_sdk::callout::{CallFailed, HttpCall, Response};
use weir_sdk::prelude::*;
use weir_sdk::testing::FakeHost;

use super::{scripted, Phase, ScriptedFilter};

#[test]
fn the_request_goes_out_as_built() {
    let mut host = scripted(|phase| {
        if let Phase::RequestHeaders(..) = phase {
            let first = HttpCall::post("billing", "/usage", b"{\"units\":1}".to_vec())
                .authority("billing.internal")
                .header("content-type", "application/json")
                .header("Content-Type", "text/plain")
                .trailer("x-sum", "1")
                .timeout(Duration::from_millis(250))
                .send()
                .unwrap();
            let second = HttpCall::get("auth", "/check").send().unwrap();
            assert_eq!((first, second), (Token(4), Token(8)), "tokens step by 4");
            return Action::Pause;
        }
        Action::Continue
    });
    let mut stream = host.stream();
    stream.send_request_headers(&[], true);
    let callouts = stream.callouts();
    assert_eq!(callouts.len(), 2);
    let billing = &callouts[0];
    assert_eq!(billing.cluster, "billing");
    let headers: Vec<(&str, &str)> = billing.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        headers,
        [(":method", "POST"), (":path", "/usage"), (":authority", "billing.internal"), ("content-type", "text/plain")]
    );
    assert_eq!(billing.body, b"{\"units\":1}");
    assert_eq!(billing.trailers, [("x-sum".to_string(), "1".to_string())]);
    assert_eq!(billing.timeout_ms, 250);
    assert_eq!(billing.context, stream.id());
    assert_eq!((callouts[1].header(":authority"), callouts[1].timeout_ms), (Some("auth"), 5000));
}

#[test]
fn answers_reach_the_closure_with_the_filter_and_the_stream_effective() {
    let answers = Rc::new(RefCell::new(Vec::new()));
    let out = answers.clone();
    let mut host = scripted(move |phase| {
        if let Phase::RequestHeaders(..) = phase {
            let out = out.clone();
            HttpCall::get("auth", "/check")
                .dispatch(move |filter: &mut ScriptedFilter, answer: CallResult| {
                    assert_eq!(weir_sdk::context::current(), filter.stream);
                    let answer = answer.unwrap();
                    http::request_headers().set("x-user", answer.header("x-user").unwrap_or("?"));
                    http::resume_request();
                    out.borrow_mut().push(answer);
                })
                .unwrap();
            return Action::Pause;
        }
        Action::Continue
    });
    let mut stream = host.stream();
    assert_eq!(stream.send_request_headers(&[(":path", "/")], true), Action::Pause);
    assert!(!stream.request_resumed());
    let token = stream.callouts()[0].token;
    stream.respond_with_trailers(token, 200, &[("X-User", "ada")], b"{\"ok\":true}", &[("x-t", "1")]);
    assert!(stream.request_resumed());
    assert_eq!(stream.request_header("x-user").as_deref(), Some("ada"));
    assert!(stream.callouts().is_empty());
    let answer: Response = answers.borrow()[0].clone();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header(":status"), Some("200"));
    assert_eq!(answer.json::<serde_json::Value>().unwrap()["ok"], true);
    assert_eq!(answer.trailers, [("x-t".to_string(), "1".to_string())]);
}

#[test]
fn answers_without_a_closure_go_to_the_trait_method_and_failures_say_why() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let out = seen.clone();
    let mut host = scripted(move |phase| {
        match phase {
            Phase::RequestHeaders(..) => {
                HttpCall::get("a", "/").send().unwrap();
                HttpCall::get("b", "/").send().unwrap();
            }
            Phase::CallResponse(token, answer) => {
                out.borrow_mut().push((token, answer.map(|r| (r.status, r.body))));
            }
            _ => {}
        }
        Action::Continue
    });
    let mut stream = host.stream();
    stream.send_request_headers(&[], true);
    stream.respond(4, 504, &[], b"upstream timeout");
    stream.fail_callout(8);
    let expected = [
        (Token(4), Ok((504, b"upstream timeout".to_vec()))),
        (Token(8), Err(CallFailed { code: 11, message: "reset".into() })),
    ];
    assert_eq!(*seen.borrow(), expected);
}

#[test]
fn the_host_refuses_bad_callouts() {
    let mut host = scripted(|phase| {
        if let Phase::RequestHeaders(..) = phase {
            assert_eq!(HttpCall::get("", "/").send(), Err(Status::BadArgument), "no cluster");
            assert_eq!(HttpCall::get("auth", "/").header(":path", "").send().map(|_| ()), Ok(()));
        }
        Action::Continue
    });
    host.stream().send_request_headers(&[], true);
    assert_eq!(host.callouts().len(), 1);
}

#[test]
fn plugin_callouts_come_back_to_the_plugin() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let out = seen.clone();
    let mut host = scripted(move |phase| {
        match phase {
            Phase::RequestHeaders(..) => time::set_tick_period(Duration::from_secs(1)),
            Phase::Tick => {
                let out = out.clone();
                HttpCall::get("config", "/latest")
                    .dispatch(move |plugin: &mut super::Scripted, answer: CallResult| {
                        plugin.config = Some(answer.unwrap().json().unwrap());
                        out.borrow_mut().push("closure");
                    })
                    .unwrap();
                HttpCall::get("config", "/other").send().unwrap();
            }
            Phase::PluginCallResponse(token, _) => seen_push(&out, token),
            _ => {}
        }
        Action::Continue
    });
    host.stream().send_request_headers(&[], true);
    host.tick();
    let callouts = host.callouts();
    assert_eq!(callouts[0].context, 1, "sent by the root context");
    host.respond(callouts[0].token, 200, &[], b"{\"v\":2}");
    host.respond(callouts[1].token, 200, &[], b"");
    assert_eq!(*seen.borrow(), ["closure", "trait 8"]);
    assert_eq!(host.plugin().config, Some(serde_json::json!({"v": 2})));
}

fn seen_push(out: &Rc<RefCell<Vec<&'static str>>>, token: Token) {
    out.borrow_mut().push(if token == Token(8) { "trait 8" } else { "trait ?" });
}

#[test]
fn an_answer_for_a_finished_request_is_dropped() {
    let called = Rc::new(RefCell::new(false));
    let out = called.clone();
    let mut host: FakeHost<super::Scripted> = scripted(move |phase| {
        if let Phase::RequestHeaders(..) = phase {
            let out = out.clone();
            HttpCall::get("slow", "/").dispatch(move |_: &mut ScriptedFilter, _| *out.borrow_mut() = true).unwrap();
        }
        Action::Continue
    });
    let stream = host.stream();
    let mut stream = stream;
    stream.send_request_headers(&[], true);
    stream.finish();
    host.respond(4, 200, &[], b"");
    assert!(!*called.borrow());
}

#[test]
fn a_callback_for_neither_the_filter_nor_the_plugin_is_reported() {
    let mut host = scripted(|phase| {
        if let Phase::RequestHeaders(..) = phase {
            HttpCall::get("auth", "/").dispatch(|_: &mut String, _| unreachable!("never called")).unwrap();
        }
        Action::Continue
    });
    host.stream().send_request_headers(&[], true);
    host.respond(4, 200, &[], b"");
    assert!(host.logged("the callback of callout 4 takes neither the filter nor the plugin"), "{:?}", host.logs());
}
