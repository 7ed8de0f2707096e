//! `add_header`: a minimal header-only proxy-wasm test filter for Weir's integration tests and for
//! `bench/run`'s `minN` variants (not a shipped filter).
//!
//! Where `headers` is deliberately busy (about ten hostcalls per request and a debug line formatted
//! in the guest for every callback), this one does the least a header filter can: one hostcall per
//! header phase and no logging on the request path, so that a benchmark of it measures the host's
//! fixed cost per filter.
//!
//! | trigger | effect |
//! |---|---|
//! | `on_configure` | config `{"name": "<name>"}`, read once; empty or absent config, or no `name` key → name `default`; invalid JSON, a non-object or a non-string `name` → logs the reason at warn and returns false (config rejected) |
//! | request headers | `add_http_request_header("x-add-header", <name>)`; Continue |
//! | response headers | `add_http_response_header("x-add-header-order", <name>)` (add, so a chain shows the order in which the filters saw the response); Continue |
//!
//! Nothing else: no other hostcall in any HTTP callback and no log line on the request path (the log
//! level is warn, so the SDK's panic hook still reports a panic).

use std::rc::Rc;

use log::warn;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(AddHeaderRoot { context_id, name: Rc::from("default") })
    });
}}

struct AddHeaderRoot {
    context_id: u32,
    name: Rc<str>,
}

impl Context for AddHeaderRoot {}

impl RootContext for AddHeaderRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        match parse_name(&config) {
            Ok(name) => {
                self.name = Rc::from(name);
                true
            }
            Err(err) => {
                warn!("add_header root {}: rejecting configuration: {err}", self.context_id);
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AddHeader { name: self.name.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The configured name: empty config or no `name` key gives `default`.
fn parse_name(config: &[u8]) -> Result<String, String> {
    if config.iter().all(u8::is_ascii_whitespace) {
        return Ok("default".to_owned());
    }
    let value: serde_json::Value = serde_json::from_slice(config).map_err(|e| format!("invalid JSON: {e}"))?;
    let object = value.as_object().ok_or("configuration is not a JSON object")?;
    match object.get("name") {
        None => Ok("default".to_owned()),
        Some(serde_json::Value::String(name)) => Ok(name.clone()),
        Some(_) => Err("`name` is not a string".to_owned()),
    }
}

struct AddHeader {
    name: Rc<str>,
}

impl Context for AddHeader {}

impl HttpContext for AddHeader {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_request_header("x-add-header", &self.name);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-add-header-order", &self.name);
        Action::Continue
    }
}
