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
//!
//! A response whose headers end the stream (no body), or whose body ends with trailers, gets no
//! `[wasm-end]`: the filter appends it only in a body callback with `eos = 1`.

use log::debug;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(BodyRoot) });
}}

struct BodyRoot;

impl Context for BodyRoot {}

impl RootContext for BodyRoot {
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("body {context_id}: create_http_context");
        Some(Box::new(Body { context_id, request_buffered: 0 }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Body {
    context_id: u32,
    /// Bytes of request body held by a PAUSE that has not yet seen `end_of_stream`.
    request_buffered: usize,
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

impl Context for Body {}

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
    }
}
