//! `headers`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It exercises header-map hostcalls, plugin configuration and local replies, so that the host's
//! tests can assert each effect through real HTTP.
//!
//! | trigger | effect |
//! |---|---|
//! | `on_configure` | config `{"name": "<name>"}`; empty or absent config, or no `name` key → name `default`; invalid JSON or a non-string `name` → returns false (config rejected) |
//! | request headers | adds `x-wasm-name: <name>`; replaces an existing `x-replace` with `replaced-by-<name>`; removes `x-remove`; sets `x-wasm-path`, `x-wasm-authority`, `x-wasm-method` to `:path`, `:authority`, `:method` (each only if that pseudo-header is present) |
//! | `:path` starts with `/local` | after the above: local reply 201, header `x-local: <name>`, body `local from <name>\n`; returns Pause |
//! | `:path` starts with `/rewrite` | after the above: sets `:path` to `/rewritten` (so `x-wasm-path` keeps the original); Continue |
//! | response headers | appends `x-wasm-order: <name>` (add, so a chain shows the call order) and sets `x-wasm-response-name: <name>`; Continue |
//! | `on_log` | logs at info `done <name> <:path>` (`:path` read from the request map in `on_log`, `-` if unreadable) |
//! | every callback | logs the phase at debug |

use std::rc::Rc;

use log::{debug, info};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(HeadersRoot { context_id, name: Rc::from("default") })
    });
}}

struct HeadersRoot {
    context_id: u32,
    name: Rc<str>,
}

impl Context for HeadersRoot {}

impl RootContext for HeadersRoot {
    fn on_vm_start(&mut self, vm_configuration_size: usize) -> bool {
        debug!("headers root {}: on_vm_start ({vm_configuration_size} bytes)", self.context_id);
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        debug!("headers root {}: on_configure ({plugin_configuration_size} bytes)", self.context_id);
        let config = self.get_plugin_configuration().unwrap_or_default();
        match parse_name(&config) {
            Ok(name) => {
                info!("headers root {}: configured with name {name}", self.context_id);
                self.name = Rc::from(name);
                true
            }
            Err(err) => {
                info!("headers root {}: rejecting configuration: {err}", self.context_id);
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("headers {context_id}: create_http_context");
        Some(Box::new(Headers { context_id, name: self.name.clone() }))
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

struct Headers {
    context_id: u32,
    name: Rc<str>,
}

impl Context for Headers {
    fn on_done(&mut self) -> bool {
        debug!("headers {}: on_done", self.context_id);
        true
    }
}

impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("headers {}: on_http_request_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        let name = &*self.name;
        self.add_http_request_header("x-wasm-name", name);
        if self.get_http_request_header("x-replace").is_some() {
            self.set_http_request_header("x-replace", Some(&format!("replaced-by-{name}")));
        }
        self.remove_http_request_header("x-remove");
        let path = self.get_http_request_header(":path");
        for (pseudo, copy) in
            [(":path", "x-wasm-path"), (":authority", "x-wasm-authority"), (":method", "x-wasm-method")]
        {
            let value = if pseudo == ":path" { path.clone() } else { self.get_http_request_header(pseudo) };
            if let Some(value) = value {
                self.set_http_request_header(copy, Some(&value));
            }
        }
        let path = path.unwrap_or_default();
        if path.starts_with("/local") {
            let body = format!("local from {name}\n");
            self.send_http_response(201, vec![("x-local", name)], Some(body.as_bytes()));
            return Action::Pause;
        }
        if path.starts_with("/rewrite") {
            self.set_http_request_header(":path", Some("/rewritten"));
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("headers {}: on_http_request_body ({body_size} bytes, eos {end_of_stream})", self.context_id);
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("headers {}: on_http_request_trailers ({num_trailers} trailers)", self.context_id);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("headers {}: on_http_response_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        self.add_http_response_header("x-wasm-order", &self.name);
        self.set_http_response_header("x-wasm-response-name", Some(&self.name));
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("headers {}: on_http_response_body ({body_size} bytes, eos {end_of_stream})", self.context_id);
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("headers {}: on_http_response_trailers ({num_trailers} trailers)", self.context_id);
        Action::Continue
    }

    fn on_log(&mut self) {
        debug!("headers {}: on_log", self.context_id);
        let path = self.get_http_request_header(":path").unwrap_or_else(|| "-".to_owned());
        info!("done {} {path}", self.name);
    }
}
