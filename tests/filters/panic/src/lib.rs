//! `panic`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It makes the guest trap on demand, so the host's tests can check failure handling
//! (fail-open / 503 `wasm_fail_stream`, the SDK's CRITICAL panic log, VM replacement).
//!
//! | trigger | effect |
//! |---|---|
//! | request header `x-panic` present (any value) | `panic!("boom from wasm")`: the SDK's panic hook logs `panicked at …: boom from wasm` at critical, then the module traps (`panic = "abort"` → `unreachable`) |
//! | otherwise | Continue, nothing changed |
//! | every callback | logs the phase at debug |

use log::debug;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PanicRoot) });
}}

struct PanicRoot;

impl Context for PanicRoot {}

impl RootContext for PanicRoot {
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("panic {context_id}: create_http_context");
        Some(Box::new(Panic { context_id }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Panic {
    context_id: u32,
}

impl Context for Panic {}

impl HttpContext for Panic {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("panic {}: on_http_request_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        if self.get_http_request_header("x-panic").is_some() {
            panic!("boom from wasm");
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("panic {}: on_http_response_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        Action::Continue
    }

    fn on_log(&mut self) {
        debug!("panic {}: on_log", self.context_id);
    }
}
