//! The example filter in Rust, on the crates.io `proxy-wasm` crate (0.2.5, unmodified). The behaviour, the same
//! in every language, is specified in docs/filters-in-other-languages.md:
//!
//! - configuration `{"tag", "deny_path", "callout_cluster", "callout_path", "callout_header"}`, all strings, all
//!   required, no other key (else `on_configure` logs why and returns false);
//! - every request: counter `example_requests` + 1, request header `x-example-request: <tag>`;
//! - `:path == deny_path`: local 403 `{"error":"forbidden"}` (`content-type: application/json`);
//! - otherwise: `GET callout_path` on `callout_cluster` (`:authority` = the cluster, 5 s), the request waits; the
//!   answer's `callout_header` is kept (no answer: local 502 `{"error":"callout failed"}`) and the request goes on;
//! - response headers: `x-example-response: <tag>`, and `x-example-callout: <kept value>` when one was kept.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ExampleRoot { config: None, requests: 0 }) });
}}

/// The configuration.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    tag: String,
    deny_path: String,
    callout_cluster: String,
    callout_path: String,
    callout_header: String,
}

struct ExampleRoot {
    config: Option<Rc<Config>>,
    requests: u32,
}

impl Context for ExampleRoot {}

impl RootContext for ExampleRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match serde_json::from_slice::<Config>(&bytes) {
            Ok(config) => {
                self.config = Some(Rc::new(config));
                self.requests =
                    proxy_wasm::hostcalls::define_metric(proxy_wasm::types::MetricType::Counter, "example_requests")
                        .unwrap_or(0);
                true
            }
            Err(e) => {
                log::error!("example: bad configuration: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Example { config, requests: self.requests, callout_value: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Example {
    config: Rc<Config>,
    requests: u32,
    callout_value: Option<String>,
}

impl Context for Example {
    fn on_http_call_response(&mut self, _token: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        if num_headers == 0 {
            self.send_http_response(
                502,
                vec![("content-type", "application/json")],
                Some(br#"{"error":"callout failed"}"#),
            );
            return;
        }
        self.callout_value = self.get_http_call_response_header(&self.config.callout_header);
        self.resume_http_request();
    }
}

impl HttpContext for Example {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _ = proxy_wasm::hostcalls::increment_metric(self.requests, 1);
        self.add_http_request_header("x-example-request", &self.config.tag);
        if self.get_http_request_header(":path").as_deref() == Some(self.config.deny_path.as_str()) {
            self.send_http_response(403, vec![("content-type", "application/json")], Some(br#"{"error":"forbidden"}"#));
            return Action::Pause;
        }
        let config = Rc::clone(&self.config);
        let headers = vec![
            (":method", "GET"),
            (":path", config.callout_path.as_str()),
            (":authority", config.callout_cluster.as_str()),
        ];
        match self.dispatch_http_call(&config.callout_cluster, headers, None, vec![], Duration::from_secs(5)) {
            Ok(_) => Action::Pause,
            Err(_) => {
                self.send_http_response(
                    502,
                    vec![("content-type", "application/json")],
                    Some(br#"{"error":"callout failed"}"#),
                );
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-example-response", &self.config.tag);
        if let Some(value) = &self.callout_value {
            self.add_http_response_header("x-example-callout", value);
        }
        Action::Continue
    }
}
