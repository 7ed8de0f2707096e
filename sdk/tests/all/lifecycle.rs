//! The lifecycle: start, configuration (parsed, refused), filters per request, the end of a request, and acting
//! on a parked request from the plugin.

use std::cell::RefCell;

use weir_sdk::abi::LogLevel;
use weir_sdk::prelude::*;
use weir_sdk::testing::FakeHost;

thread_local! {
    static EVENTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn event(text: String) {
    EVENTS.with_borrow_mut(|events| events.push(text));
}

fn events() -> Vec<String> {
    EVENTS.with_borrow_mut(std::mem::take)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    issuer: String,
    #[serde(default)]
    accept: bool,
}

#[derive(Default)]
struct Lifecycle {
    parked: Vec<ContextId>,
}

struct Request {
    id: ContextId,
}

impl Plugin for Lifecycle {
    type Config = Config;
    type Filter = Request;

    fn on_vm_start(&mut self, vm_configuration: &[u8]) -> bool {
        event(format!("vm_start {}", String::from_utf8_lossy(vm_configuration)));
        vm_configuration != b"refuse"
    }

    fn on_configure(&mut self, config: Config) -> bool {
        event(format!("configure {} {}", config.issuer, config.accept));
        config.accept
    }

    fn create_filter(&mut self, stream: ContextId) -> Request {
        event(format!("create {stream}"));
        Request { id: stream }
    }

    fn on_tick(&mut self) {
        for stream in self.parked.drain(..) {
            context::set_effective(stream).unwrap();
            http::request_headers().set("x-released", "1");
            http::resume_request();
        }
        assert_eq!(context::set_effective(ContextId(999)), Err(Status::BadArgument));
    }
}

use weir_sdk::context;

impl HttpFilter for Request {
    fn on_request_headers(&mut self, _headers: Headers, end_of_stream: bool) -> Action {
        event(format!("request_headers {} {end_of_stream}", self.id));
        time::set_tick_period(std::time::Duration::from_secs(1));
        Action::Pause
    }

    fn on_log(&mut self) {
        event(format!("log {}", self.id));
    }

    fn on_done(&mut self) -> bool {
        event(format!("done {}", self.id));
        true
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        event(format!("drop {}", self.id));
    }
}

#[test]
fn a_request_goes_create_phases_log_done_drop() {
    let mut host = FakeHost::<Lifecycle>::new();
    assert!(host.start("vm-config"));
    assert!(host.configure(r#"{"issuer": "id.example.com", "accept": true}"#));
    let mut first = host.stream();
    assert_eq!(first.id(), 2);
    assert_eq!(first.send_request_headers(&[], true), Action::Pause);
    assert!(first.finish());
    let second = host.stream();
    assert_eq!(second.id(), 3);
    let expected = [
        "vm_start vm-config",
        "configure id.example.com true",
        "create 2",
        "request_headers 2 true",
        "log 2",
        "done 2",
        "drop 2",
        "create 3",
    ];
    assert_eq!(events(), expected);
}

#[test]
fn configurations_that_do_not_parse_are_refused_with_the_reason() {
    let table: &[(&str, &str)] = &[
        ("", "missing field `issuer` at line 1 column 2"),
        ("{\"issuer\": 1}", "invalid type: integer `1`, expected a string at line 1 column 12"),
        (
            "{\n  \"issuer\": \"a\",\n  \"acept\": true\n}",
            "unknown field `acept`, expected `issuer` or `accept` at line 3 column 9",
        ),
        ("[", "EOF while parsing a list at line 1 column 1"),
    ];
    for &(config, reason) in table {
        let mut host = FakeHost::<Lifecycle>::new();
        assert!(!host.configure(config), "{config:?}");
        let errors: Vec<_> = host.logs().into_iter().filter(|e| e.level == LogLevel::Error).collect();
        assert_eq!(errors.len(), 1, "{config:?}: {errors:?}");
        assert!(errors[0].message.ends_with(reason), "{config:?}: {}", errors[0].message);
        let prefix = if config.is_empty() { "empty" } else { "invalid" };
        let prefix = format!("{prefix} configuration for all::lifecycle::Config: ");
        assert!(errors[0].message.starts_with(&prefix), "{}", errors[0].message);
        assert_eq!(events(), ["vm_start "], "{config:?}: the plugin never saw it");
    }
}

#[test]
fn the_plugin_may_refuse_a_start_or_a_configuration_that_parses() {
    let mut host = FakeHost::<Lifecycle>::new();
    assert!(!host.configure(r#"{"issuer": "x"}"#));
    assert_eq!(events(), ["vm_start ", "configure x false"]);

    let mut host = FakeHost::<Lifecycle>::new();
    assert!(!host.start("refuse"));
    assert!(!host.configure(r#"{"issuer": "x", "accept": true}"#));
    events();
}

#[test]
fn a_parked_request_is_resumed_from_the_plugin() {
    let mut host = FakeHost::<Lifecycle>::with_plugin(|| Lifecycle { parked: Vec::new() });
    assert!(host.configure(r#"{"issuer": "x", "accept": true}"#));
    let mut stream = host.stream();
    let id = stream.id();
    stream.send_request_headers(&[(":path", "/")], true);
    let parked = ContextId(stream.filter().id.0);
    stream.plugin_mut().parked.push(parked);
    assert!(host.tick());
    let stream = host.stream_by_id(id).unwrap();
    assert!(stream.request_resumed());
    assert_eq!(stream.request_header("x-released").as_deref(), Some("1"));
    assert!(host.plugin().parked.is_empty());
    events();
}

/// A plugin that needs a tick to finish when the host stops it.
#[derive(Default)]
struct Draining {
    stopping: bool,
}

impl Plugin for Draining {
    type Config = ();
    type Filter = Request;

    fn on_configure(&mut self, _config: ()) -> bool {
        time::set_tick_period(std::time::Duration::from_secs(1));
        assert_eq!(context::done(), Err(Status::NotFound), "not stopping yet");
        true
    }

    fn create_filter(&mut self, stream: ContextId) -> Request {
        Request { id: stream }
    }

    fn on_tick(&mut self) {
        if self.stopping {
            context::done().unwrap();
        }
    }

    fn on_done(&mut self) -> bool {
        self.stopping = true;
        false
    }
}

#[test]
fn a_plugin_can_finish_its_work_before_it_goes() {
    let mut host = FakeHost::<Draining>::new();
    assert!(host.configure(""));
    assert!(!host.stop(), "busy");
    assert!(host.running());
    assert!(host.tick());
    assert!(!host.running(), "deleted after proxy_done");
    events();
}
