//! `foreign`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It exercises foreign functions (`compress`, `uncompress`, `clear_route_cache`, unknown names), the
//! request, response, upstream and connection properties, and capability restriction.
//!
//! | trigger | effect |
//! |---|---|
//! | `:path` starts with `/compress` | `compress(x-data)` then `uncompress` of that: local reply 200, body = the round trip, headers `x-compressed-len` (decimal) and `x-zlib-header` (first two compressed bytes, hex) |
//! | `:path` starts with `/uncompress-garbage` | `uncompress(b"definitely not zlib")`: local reply 200, header `x-status: <status number>` (`ok` if it succeeded) |
//! | `:path` starts with `/unknown` | calls `declare_property` and `no_such_function`: local reply 200, headers `x-declare-property` and `x-no-such-function` with the status numbers (`ok` if one succeeded) |
//! | `:path` starts with `/env` | local reply 200 with the VM's environment (WASI `environ_get`, through `std::env::vars`) as the body, one `KEY=VALUE` line each, in the order the host gives |
//! | `:path` starts with `/report` | local reply 200 with the shared data `log:<x-report-id>` as the body (404 if absent) |
//! | request header `x-set-path` | sets `:path` to its value |
//! | request header `x-set-tenant` | sets request header `x-tenant` to its value |
//! | request header `x-clear-route-cache` | calls the foreign function `clear_route_cache` (after the two rows above); adds request header `x-clear-status` (`ok` or the status number); response headers then get `x-route-name` (the `xds.route_name` property) |
//! | request header `x-props` | adds request header `x-props-request`: JSON of the request-phase properties; response headers get `x-props-response` (response-phase properties); `on_log` stores the log-phase properties as JSON in shared data `log:<x-request-id>` |
//! | request header `x-caps` | adds request header `x-get-property-status` (`ok` or the status number of `get_property(request.path)`); response headers get `x-response-headers-called: yes` |
//!
//! Property values in the JSON: an `int` as a number, `connection.mtls` as a boolean, strings as strings,
//! and `null` when the host answers NOT_FOUND (or empty).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, Status};
use serde_json::{json, Map, Value};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ForeignRoot) });
}}

struct ForeignRoot;

impl Context for ForeignRoot {}

impl RootContext for ForeignRoot {
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Foreign::default()))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

#[derive(Default)]
struct Foreign {
    props: bool,
    caps: bool,
    rerouted: bool,
    request_id: String,
}

/// A status as the filter reports it: `ok`, or its number.
fn outcome<T>(r: &Result<T, Status>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(status) => (*status as u32).to_string(),
    }
}

/// How each property is decoded: an i64, a bool, or a string.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Text,
}

fn property(path: &str, kind: Kind) -> Value {
    let segments: Vec<&str> = path.split('.').collect();
    match hostcalls::get_property(segments) {
        Ok(Some(bytes)) => match kind {
            Kind::Int => <[u8; 8]>::try_from(bytes.as_slice()).map_or(Value::Null, |b| json!(i64::from_le_bytes(b))),
            Kind::Bool => json!(bytes == [1]),
            Kind::Text => json!(String::from_utf8_lossy(&bytes)),
        },
        Ok(None) => Value::Null,
        Err(status) => json!(format!("error {}", status as u32)),
    }
}

fn properties(list: &[(&str, Kind)]) -> String {
    let map: Map<String, Value> = list.iter().map(|(p, k)| (p.to_string(), property(p, *k))).collect();
    Value::Object(map).to_string()
}

const REQUEST_PROPERTIES: &[(&str, Kind)] = &[
    ("request.size", Kind::Int),
    ("request.total_size", Kind::Int),
    ("request.headers_bytes", Kind::Int),
    ("request.duration", Kind::Int),
    ("request.referer", Kind::Text),
    ("request.useragent", Kind::Text),
    ("request.id", Kind::Text),
    ("response.code_details", Kind::Text),
    ("response.size", Kind::Int),
    ("response.flags", Kind::Int),
    ("upstream.address", Kind::Text),
    ("upstream.port", Kind::Int),
    ("connection.requested_server_name", Kind::Text),
    ("connection.tls_version", Kind::Text),
    ("connection.mtls", Kind::Bool),
];

const RESPONSE_PROPERTIES: &[(&str, Kind)] = &[
    ("request.duration", Kind::Int),
    ("response.code", Kind::Int),
    ("response.code_details", Kind::Text),
    ("response.headers_bytes", Kind::Int),
    ("response.flags", Kind::Int),
    ("upstream.address", Kind::Text),
    ("upstream.port", Kind::Int),
];

const LOG_PROPERTIES: &[(&str, Kind)] = &[
    ("request.duration", Kind::Int),
    ("request.size", Kind::Int),
    ("request.total_size", Kind::Int),
    ("response.size", Kind::Int),
    ("response.total_size", Kind::Int),
    ("response.headers_bytes", Kind::Int),
    ("response.code_details", Kind::Text),
    ("upstream.address", Kind::Text),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Context for Foreign {}

impl Foreign {
    fn reply(&self, status: u32, headers: Vec<(&str, &str)>, body: &[u8]) -> Action {
        self.send_http_response(status, headers, Some(body));
        Action::Pause
    }
}

impl HttpContext for Foreign {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        if path.starts_with("/compress") {
            let data = self.get_http_request_header("x-data").unwrap_or_default();
            let packed = hostcalls::call_foreign_function("compress", Some(data.as_bytes()));
            let Ok(Some(packed)) = packed else {
                return self.reply(500, vec![("x-status", &outcome(&packed))], b"compress failed\n");
            };
            let back = hostcalls::call_foreign_function("uncompress", Some(&packed));
            let Ok(back) = back else {
                return self.reply(500, vec![("x-status", &outcome(&back))], b"uncompress failed\n");
            };
            let len = packed.len().to_string();
            let head = hex(&packed[..packed.len().min(2)]);
            let headers = vec![("x-compressed-len", len.as_str()), ("x-zlib-header", head.as_str())];
            return self.reply(200, headers, &back.unwrap_or_default());
        }
        if path.starts_with("/env") {
            let body: String = std::env::vars().map(|(k, v)| format!("{k}={v}\n")).collect();
            return self.reply(200, vec![], body.as_bytes());
        }
        if path.starts_with("/uncompress-garbage") {
            let r = hostcalls::call_foreign_function("uncompress", Some(b"definitely not zlib"));
            return self.reply(200, vec![("x-status", &outcome(&r))], b"");
        }
        if path.starts_with("/unknown") {
            let declare = outcome(&hostcalls::call_foreign_function("declare_property", Some(b"x")));
            let none = outcome(&hostcalls::call_foreign_function("no_such_function", None));
            return self.reply(200, vec![("x-declare-property", &declare), ("x-no-such-function", &none)], b"");
        }
        if path.starts_with("/report") {
            let id = self.get_http_request_header("x-report-id").unwrap_or_default();
            return match self.get_shared_data(&format!("log:{id}")).0 {
                Some(body) => self.reply(200, vec![("content-type", "application/json")], &body),
                None => self.reply(404, vec![], b"no report\n"),
            };
        }
        if let Some(p) = self.get_http_request_header("x-set-path") {
            self.set_http_request_header(":path", Some(&p));
        }
        if let Some(t) = self.get_http_request_header("x-set-tenant") {
            self.set_http_request_header("x-tenant", Some(&t));
        }
        if self.get_http_request_header("x-clear-route-cache").is_some() {
            self.rerouted = true;
            let status = outcome(&hostcalls::call_foreign_function("clear_route_cache", None));
            self.set_http_request_header("x-clear-status", Some(&status));
        }
        if self.get_http_request_header("x-props").is_some() {
            self.props = true;
            self.request_id = self.get_http_request_header("x-request-id").unwrap_or_default();
            self.set_http_request_header("x-props-request", Some(&properties(REQUEST_PROPERTIES)));
        }
        if self.get_http_request_header("x-caps").is_some() {
            self.caps = true;
            let status = outcome(&hostcalls::get_property(vec!["request", "path"]));
            self.set_http_request_header("x-get-property-status", Some(&status));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if self.rerouted {
            let route = property("xds.route_name", Kind::Text);
            self.set_http_response_header("x-route-name", Some(route.as_str().unwrap_or("-")));
        }
        if self.props {
            self.set_http_response_header("x-props-response", Some(&properties(RESPONSE_PROPERTIES)));
        }
        if self.caps {
            self.set_http_response_header("x-response-headers-called", Some("yes"));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.props {
            let key = format!("log:{}", self.request_id);
            let _ = self.set_shared_data(&key, Some(properties(LOG_PROPERTIES).as_bytes()), None);
        }
    }
}
