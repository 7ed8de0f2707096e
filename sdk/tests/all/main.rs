//! The SDK's own tests: every helper through the fake host, the example filters natively, and the example
//! filters built to wasm32-wasip1 (exports, imports, size). One binary, one module per area.

mod body;
mod callouts;
mod examples;
mod headers;
mod lifecycle;
mod logging;
mod metrics;
mod properties;
mod queues;
mod responses;
mod shared;
mod timers;
mod wasm;

use std::cell::RefCell;

use weir_sdk::callout::{CallResult, Token};
use weir_sdk::prelude::*;
use weir_sdk::testing::FakeHost;

/// What a [`Scripted`] filter or plugin is asked to do.
pub enum Phase {
    /// `on_request_headers`.
    RequestHeaders(Headers, bool),
    /// `on_request_body`.
    RequestBody(Body, bool),
    /// `on_request_trailers`.
    RequestTrailers(Headers),
    /// `on_response_headers`.
    ResponseHeaders(Headers, bool),
    /// `on_response_body`.
    ResponseBody(Body, bool),
    /// `on_response_trailers`.
    ResponseTrailers(Headers),
    /// `on_log`.
    Log,
    /// A callout answer to the filter's trait method.
    CallResponse(Token, CallResult),
    /// The plugin's `on_tick`.
    Tick,
    /// The plugin's `on_queue_ready`.
    QueueReady(Queue),
    /// A callout answer to the plugin's trait method.
    PluginCallResponse(Token, CallResult),
}

type Script = Box<dyn FnMut(Phase) -> Action>;

thread_local! {
    static SCRIPT: RefCell<Option<Script>> = const { RefCell::new(None) };
}

fn run(phase: Phase) -> Action {
    let mut script = SCRIPT.with_borrow_mut(Option::take).expect("a script is set");
    let action = script(phase);
    SCRIPT.with_borrow_mut(|slot| {
        slot.get_or_insert(script);
    });
    action
}

/// A plugin and filter that do what the test's script says, phase by phase.
#[derive(Default)]
pub struct Scripted {
    /// The last configuration.
    pub config: Option<serde_json::Value>,
}

/// The per-request side of [`Scripted`].
pub struct ScriptedFilter {
    /// The stream's id.
    pub stream: ContextId,
}

impl Plugin for Scripted {
    type Config = serde_json::Value;
    type Filter = ScriptedFilter;

    fn on_configure(&mut self, config: serde_json::Value) -> bool {
        self.config = Some(config);
        true
    }

    fn create_filter(&mut self, stream: ContextId) -> ScriptedFilter {
        ScriptedFilter { stream }
    }

    fn on_tick(&mut self) {
        run(Phase::Tick);
    }

    fn on_queue_ready(&mut self, queue: Queue) {
        run(Phase::QueueReady(queue));
    }

    fn on_http_call_response(&mut self, token: Token, response: CallResult) {
        run(Phase::PluginCallResponse(token, response));
    }
}

impl HttpFilter for ScriptedFilter {
    fn on_request_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        run(Phase::RequestHeaders(headers, end_of_stream))
    }
    fn on_request_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        run(Phase::RequestBody(body, end_of_stream))
    }
    fn on_request_trailers(&mut self, trailers: Headers) -> Action {
        run(Phase::RequestTrailers(trailers))
    }
    fn on_response_headers(&mut self, headers: Headers, end_of_stream: bool) -> Action {
        run(Phase::ResponseHeaders(headers, end_of_stream))
    }
    fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> Action {
        run(Phase::ResponseBody(body, end_of_stream))
    }
    fn on_response_trailers(&mut self, trailers: Headers) -> Action {
        run(Phase::ResponseTrailers(trailers))
    }
    fn on_http_call_response(&mut self, token: Token, response: CallResult) {
        run(Phase::CallResponse(token, response));
    }
    fn on_log(&mut self) {
        run(Phase::Log);
    }
}

/// A configured fake host whose filter runs `script`.
pub fn scripted(script: impl FnMut(Phase) -> Action + 'static) -> FakeHost<Scripted> {
    SCRIPT.with_borrow_mut(|slot| *slot = Some(Box::new(script)));
    let mut host = FakeHost::new();
    assert!(host.configure(""));
    host
}

/// Runs `body` in the request headers phase of one request with `headers`; returns the host for assertions.
pub fn in_request_headers(headers: &[(&str, &str)], body: impl FnOnce(Headers) + 'static) -> FakeHost<Scripted> {
    let mut body = Some(body);
    let mut host = scripted(move |phase| {
        if let Phase::RequestHeaders(headers, _) = phase {
            (body.take().expect("called once"))(headers);
        }
        Action::Continue
    });
    host.stream().send_request_headers(headers, true);
    host
}
