//! `body`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It exercises body buffering (PAUSE until end of stream), body replacement, streaming pass-through
//! and appending at the end of a body.
//!
//! | trigger | effect |
//! |---|---|
//! | request headers | removes `content-length`; Continue |
//! | request body | Pause until `end_of_stream`; then reads the whole buffered body and replaces it with the same bytes ASCII-uppercased; Continue |
//! | request trailers | if a body was buffered (the last body chunk had `eos = 0`), uppercases it there; Continue |
//! | response headers | removes `content-length`; Continue |
//! | response body, `eos = 0` | Continue: each chunk passes unchanged as it comes |
//! | response body, `eos = 1` | appends `[wasm-end]` with `set_http_response_body(body_size, 0, b"[wasm-end]")`; Continue |
//! | every callback | logs the phase at debug |
//! | `on_log` | increments counter `<counter>_log`, and `<counter>_path_in_log` when it can read request header `:path` |
//! | `on_done` | increments counter `<counter>_done` |
//!
//! Configuration (optional, JSON): `{"counter": "<prefix>", "needs": {...}}`. `counter` names the counters
//! above (default `body`); `needs`, when present, is passed as is to Weir's foreign function
//! `weir.declare_stream_needs` from `on_configure` (the answer is ignored: Envoy has no such function).
//!
//! A response whose headers end the stream (no body), or whose body ends with trailers, gets no
//! `[wasm-end]`: the filter appends it only in a body callback with `eos = 1`.

use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(BodyRoot::default()) });
}}

/// The counters the streams' end callbacks increment.
#[derive(Clone, Copy, Default)]
struct Counters {
    log: u32,
    path_in_log: u32,
    done: u32,
}

#[derive(Default)]
struct BodyRoot {
    counters: Counters,
}

impl Context for BodyRoot {}

impl RootContext for BodyRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config: serde_json::Value =
            self.get_plugin_configuration().and_then(|c| serde_json::from_slice(&c).ok()).unwrap_or_default();
        let prefix = config["counter"].as_str().unwrap_or("body").to_string();
        let define = |suffix: &str| hostcalls::define_metric(MetricType::Counter, &format!("{prefix}_{suffix}"));
        match (define("log"), define("path_in_log"), define("done")) {
            (Ok(log), Ok(path_in_log), Ok(done)) => self.counters = Counters { log, path_in_log, done },
            _ => return false,
        }
        if let Some(needs) = config.get("needs") {
            let args = needs.to_string();
            let answer = hostcalls::call_foreign_function("weir.declare_stream_needs", Some(args.as_bytes()));
            debug!("body: weir.declare_stream_needs({args}): {:?}", answer.map(|_| ()));
        }
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("body {context_id}: create_http_context");
        Some(Box::new(Body { context_id, request_buffered: 0, counters: self.counters }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Body {
    context_id: u32,
    /// Bytes of request body held by a PAUSE that has not yet seen `end_of_stream`.
    request_buffered: usize,
    counters: Counters,
}

impl Body {
    /// Replaces the first `size` bytes of the request body with their ASCII-uppercase form.
    fn uppercase_request_body(&self, size: usize) {
        if size == 0 {
            return;
        }
        if let Some(body) = self.get_http_request_body(0, size) {
            let upper = body.to_ascii_uppercase();
            self.set_http_request_body(0, size, &upper);
        }
    }
}

impl Context for Body {
    fn on_done(&mut self) -> bool {
        let _ = hostcalls::increment_metric(self.counters.done, 1);
        true
    }
}

impl HttpContext for Body {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("body {}: on_http_request_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        self.remove_http_request_header("content-length");
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("body {}: on_http_request_body ({body_size} bytes, eos {end_of_stream})", self.context_id);
        if !end_of_stream {
            self.request_buffered = body_size;
            return Action::Pause;
        }
        self.request_buffered = 0;
        self.uppercase_request_body(body_size);
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("body {}: on_http_request_trailers ({num_trailers} trailers)", self.context_id);
        let buffered = std::mem::take(&mut self.request_buffered);
        self.uppercase_request_body(buffered);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("body {}: on_http_response_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        self.remove_http_response_header("content-length");
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("body {}: on_http_response_body ({body_size} bytes, eos {end_of_stream})", self.context_id);
        if end_of_stream {
            self.set_http_response_body(body_size, 0, b"[wasm-end]");
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("body {}: on_http_response_trailers ({num_trailers} trailers)", self.context_id);
        Action::Continue
    }

    fn on_log(&mut self) {
        debug!("body {}: on_log", self.context_id);
        let _ = hostcalls::increment_metric(self.counters.log, 1);
        if self.get_http_request_header(":path").is_some() {
            let _ = hostcalls::increment_metric(self.counters.path_in_log, 1);
        }
    }
}
