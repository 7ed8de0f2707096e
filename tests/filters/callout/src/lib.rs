//! `callout`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It exercises HTTP callouts from a stream (`proxy_http_call`), the callout response callback
//! (maps 6, buffer 4) and resuming or answering a paused request from that callback.
//!
//! | trigger | effect |
//! |---|---|
//! | `on_configure` | config `{"cluster": "<name>", "path": "/auth"}`; empty config or missing keys → cluster `auth`, path `/auth`; invalid JSON or non-string values → returns false |
//! | request headers | `dispatch_http_call(cluster, [(":method","GET"), (":path", path), (":authority","auth.internal"), ("x-original-path", <request :path>)], no body, no trailers, 5 s)`; returns Pause |
//! | dispatch returns an error | local reply 500, body `dispatch failed\n` |
//! | callout response with 0 headers (failure) | local reply 502, body `callout failed\n` |
//! | callout response `:status` 200 | adds request header `x-callout-body: <callout body, UTF-8 lossy, trimmed>` and resumes the request |
//! | callout response, other `:status` | local reply 403, header `x-callout-status: <status>` (empty if absent), body `denied\n` |
//! | every callback | logs the phase at debug |

use std::rc::Rc;
use std::time::Duration;

use log::{debug, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(CalloutRoot { context_id, config: Rc::new(Config::default()) })
    });
}}

struct Config {
    cluster: String,
    path: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { cluster: "auth".to_owned(), path: "/auth".to_owned() }
    }
}

fn parse_config(config: &[u8]) -> Result<Config, String> {
    let mut parsed = Config::default();
    if config.iter().all(u8::is_ascii_whitespace) {
        return Ok(parsed);
    }
    let value: serde_json::Value = serde_json::from_slice(config).map_err(|e| format!("invalid JSON: {e}"))?;
    let object = value.as_object().ok_or("configuration is not a JSON object")?;
    for (key, slot) in [("cluster", &mut parsed.cluster), ("path", &mut parsed.path)] {
        match object.get(key) {
            None => {}
            Some(serde_json::Value::String(v)) => *slot = v.clone(),
            Some(_) => return Err(format!("`{key}` is not a string")),
        }
    }
    Ok(parsed)
}

struct CalloutRoot {
    context_id: u32,
    config: Rc<Config>,
}

impl Context for CalloutRoot {}

impl RootContext for CalloutRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        debug!("callout root {}: on_configure ({plugin_configuration_size} bytes)", self.context_id);
        let config = self.get_plugin_configuration().unwrap_or_default();
        match parse_config(&config) {
            Ok(config) => {
                info!("callout root {}: cluster {} path {}", self.context_id, config.cluster, config.path);
                self.config = Rc::new(config);
                true
            }
            Err(err) => {
                info!("callout root {}: rejecting configuration: {err}", self.context_id);
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("callout {context_id}: create_http_context");
        Some(Box::new(Callout { context_id, config: self.config.clone(), token: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Callout {
    context_id: u32,
    config: Rc<Config>,
    token: Option<u32>,
}

impl Context for Callout {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
        debug!(
            "callout {}: on_http_call_response (token {token_id}, {num_headers} headers, {body_size} bytes, {num_trailers} trailers)",
            self.context_id
        );
        if self.token != Some(token_id) {
            warn!("callout {}: unexpected token {token_id} (expected {:?})", self.context_id, self.token);
        }
        self.token = None;
        if num_headers == 0 {
            self.send_http_response(502, vec![], Some(b"callout failed\n"));
            return;
        }
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        if status == "200" {
            let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
            let body = String::from_utf8_lossy(&body);
            self.add_http_request_header("x-callout-body", body.trim());
            self.resume_http_request();
        } else {
            self.send_http_response(403, vec![("x-callout-status", &status)], Some(b"denied\n"));
        }
    }

    fn on_done(&mut self) -> bool {
        debug!("callout {}: on_done", self.context_id);
        true
    }
}

impl HttpContext for Callout {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("callout {}: on_http_request_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        let original_path = self.get_http_request_header(":path").unwrap_or_default();
        let headers = vec![
            (":method", "GET"),
            (":path", self.config.path.as_str()),
            (":authority", "auth.internal"),
            ("x-original-path", original_path.as_str()),
        ];
        match self.dispatch_http_call(&self.config.cluster, headers, None, vec![], Duration::from_secs(5)) {
            Ok(token) => {
                debug!("callout {}: dispatched token {token}", self.context_id);
                self.token = Some(token);
            }
            Err(status) => {
                warn!("callout {}: dispatch_http_call failed: {status:?}", self.context_id);
                self.send_http_response(500, vec![], Some(b"dispatch failed\n"));
            }
        }
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("callout {}: on_http_request_body ({body_size} bytes, eos {end_of_stream})", self.context_id);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("callout {}: on_http_response_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        Action::Continue
    }

    fn on_log(&mut self) {
        debug!("callout {}: on_log", self.context_id);
    }
}
