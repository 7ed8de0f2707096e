//! `trailers`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It exercises request and response trailers: the trailers callbacks, maps 1 and 3 in every phase
//! (including trailers created in a final body callback), pausing in `on_response_trailers` and resuming
//! from a tick or a callout answer, local responses from the trailers callbacks, and what `on_log` reads.
//! Statuses the SDK would panic on are read with the raw hostcalls (`probe`), so the filter can report them.
//!
//! Configuration: `{"name": "<N>", "cluster": "<callout cluster>"}`, both optional (`t`, `svc`).
//!
//! | trigger | effect |
//! |---|---|
//! | request headers | reads the `x-t-*` control headers below (`x-t-add`, `x-t-pause`, `x-t-local` and `x-t-close` apply to every filter, or with a `<N>:` prefix to filter `<N>` only); sets request header `x-t-probe-<N>` to the statuses of reading request trailer `k` and response trailer `k` now (`status:2,status:2`: unavailable) |
//! | `x-t-fetch: <key>` | local reply 200 with the shared data at `<key>` as the body (404 when absent); Pause |
//! | `x-t-declare: <names>` | sets request header `trailer: <names>` and, in response headers, response header `trailer: <names>` (HTTP/1.1 peers get only declared trailers) |
//! | request / response body | records each callback's `end_of_stream` |
//! | `x-t-hold: request` / `response` / `both` | body callbacks with `eos = 0` in that direction answer Pause (the filter buffers the body); its trailers callback then reads the held body as the body buffer, appends `\|held-by-<N>:<length read>` to it, and adds trailer `x-held-<N>: <length read>` |
//! | final request body callback (`eos = 1`) with `x-t-add: request` or `both` | adds request trailer `x-added-<N>: final-body <probe>`, `<probe>` being the status of reading that trailer just before (`status:2`: the map does not exist yet) |
//! | final response body callback with `x-t-add: response` or `both` | the same with response trailer `x-added-<N>` |
//! | request / response trailers | adds `x-trailer-order: <N>`, `x-body-eos-<N>: <eos of every body callback so far, e.g. false,false>`, `x-count-<N>: <num_trailers>`; replaces `x-replace` (if present) with `replaced-by-<N>`; removes `x-remove` |
//! | response trailers | also adds `x-request-trailer-<N>: <probe of request trailer x-client>` (request trailers stay readable), `x-property-<N>: <property response.trailers.x-up-trailer, or none>` and `x-property-count-<N>: <number of entries of property response.trailers>` (both read after the edits above) |
//! | `x-t-local: request-trailers` / `response-trailers` | local reply 418, header `x-local-from: <N>`, body `local from <N>\n`, from that trailers callback; Pause |
//! | `x-t-close: request-trailers` / `response-trailers` | `proxy_close_stream(HTTP_REQUEST / HTTP_RESPONSE)` from that trailers callback; Pause |
//! | `x-t-pause: tick` | response trailers: Pause; the root's tick (10 ms) resumes it once 100 ms have passed, adding response trailer `x-resumed-by: tick` first |
//! | `x-t-pause: callout` | response trailers: `dispatch_http_call(cluster, POST /callout, body "ping", trailer x-callout-trailer: <N>)`, Pause; the answer adds `x-resumed-by: callout <:status>` and `x-callout-trailer-echo: <the trailer the upstream echoed, or none>`, and resumes |
//! | `x-t-log-key: <key>` | `on_log` stores, at shared data `<key>/<N>`, JSON with the probes of request trailer `x-client` (`request_value`), request trailers pairs count and size (`request_pairs`, `request_size`), response trailer `x-up-trailer` (`response_value`), response trailers pairs and size |

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use log::{debug, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(TrailersRoot { context_id, config: Rc::new(Config::default()), paused: Rc::default() })
    });
}}

// The raw hostcalls, for statuses the SDK's wrappers panic on (BAD_ARGUMENT) or never expose (map size).
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_size(map_type: u32, return_size: *mut usize) -> u32;
}

const REQUEST_TRAILERS: u32 = 1;
const RESPONSE_TRAILERS: u32 = 3;

/// `ok:<value>` or `status:<code>` for reading `key` from map `map`.
fn probe(map: u32, key: &str) -> String {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let status = unsafe { proxy_get_header_map_value(map, key.as_ptr(), key.len(), &mut data, &mut size) };
    if status != 0 {
        return format!("status:{status}");
    }
    if data.is_null() {
        return "ok:".to_owned();
    }
    let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
    format!("ok:{}", String::from_utf8_lossy(&bytes))
}

/// `ok:<size>` or `status:<code>` for the size of map `map`.
fn probe_size(map: u32) -> String {
    let mut size: usize = 0;
    match unsafe { proxy_get_header_map_size(map, &mut size) } {
        0 => format!("ok:{size}"),
        status => format!("status:{status}"),
    }
}

/// A control value for filter `name`: `<value>` applies to every filter, `<filter>:<value>` to that one.
fn targeted(value: Option<String>, name: &str) -> String {
    let value = value.unwrap_or_default();
    match value.split_once(':') {
        Some((target, v)) if target == name => v.to_owned(),
        Some(_) => String::new(),
        None => value,
    }
}

fn eos_list(seen: &[bool]) -> String {
    seen.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",")
}

struct Config {
    name: String,
    cluster: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { name: "t".to_owned(), cluster: "svc".to_owned() }
    }
}

/// Contexts paused in response trailers, waiting for a tick: (id, resume no earlier than).
type Paused = Rc<RefCell<Vec<(u32, SystemTime)>>>;

struct TrailersRoot {
    context_id: u32,
    config: Rc<Config>,
    paused: Paused,
}

impl Context for TrailersRoot {}

impl RootContext for TrailersRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        let mut config = Config::default();
        if !raw.iter().all(u8::is_ascii_whitespace) {
            let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&raw) else { return false };
            for (key, slot) in [("name", &mut config.name), ("cluster", &mut config.cluster)] {
                if let Some(value) = object.get(key) {
                    let Some(value) = value.as_str() else { return false };
                    *slot = value.to_owned();
                }
            }
        }
        self.config = Rc::new(config);
        self.set_tick_period(Duration::from_millis(10));
        true
    }

    fn on_tick(&mut self) {
        let now = self.get_current_time();
        let due: Vec<u32> = {
            let mut paused = self.paused.borrow_mut();
            let due = paused.iter().filter(|(_, at)| *at <= now).map(|(id, _)| *id).collect();
            paused.retain(|(_, at)| *at > now);
            due
        };
        for id in due {
            match hostcalls::set_effective_context(id) {
                Ok(()) => {
                    hostcalls::add_map_value(MapType::HttpResponseTrailers, "x-resumed-by", "tick").unwrap();
                    hostcalls::resume_http_response().unwrap();
                }
                Err(status) => warn!("trailers root {}: set_effective_context({id}): {status:?}", self.context_id),
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Trailers {
            id: context_id,
            config: self.config.clone(),
            paused: self.paused.clone(),
            control: Control::default(),
            request_eos: Vec::new(),
            response_eos: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// What the request's `x-t-*` headers ask for.
#[derive(Default)]
struct Control {
    add: String,
    pause: String,
    local: String,
    close: String,
    hold: String,
    declare: Option<String>,
    log_key: Option<String>,
}

struct Trailers {
    id: u32,
    config: Rc<Config>,
    paused: Paused,
    control: Control,
    request_eos: Vec<bool>,
    response_eos: Vec<bool>,
}

impl Trailers {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// The common edits of a trailers callback, on map `map`.
    fn edit(&self, map: MapType, n: usize, eos: &[bool]) {
        let name = self.name();
        hostcalls::add_map_value(map, "x-trailer-order", name).unwrap();
        hostcalls::add_map_value(map, &format!("x-body-eos-{name}"), &eos_list(eos)).unwrap();
        hostcalls::add_map_value(map, &format!("x-count-{name}"), &n.to_string()).unwrap();
        if hostcalls::get_map_value(map, "x-replace").unwrap().is_some() {
            hostcalls::set_map_value(map, "x-replace", Some(&format!("replaced-by-{name}"))).unwrap();
        }
        hostcalls::set_map_value(map, "x-remove", None).unwrap();
    }

    fn wants_hold(&self, direction: &str) -> bool {
        self.control.hold == direction || self.control.hold == "both"
    }

    /// In a trailers callback of a filter that held the body: appends `|held-by-<N>:<len>` to the body it
    /// reads, and adds trailer `x-held-<N>: <len>`.
    fn rewrite_held(&self, map: MapType, body: BufferType) {
        let name = self.name();
        let held = hostcalls::get_buffer(body, 0, usize::MAX).unwrap().unwrap_or_default();
        let tail = format!("|held-by-{name}:{}", held.len());
        hostcalls::set_buffer(body, held.len(), 0, tail.as_bytes()).unwrap();
        hostcalls::add_map_value(map, &format!("x-held-{name}"), &held.len().to_string()).unwrap();
    }

    fn wants_add(&self, direction: &str) -> bool {
        self.control.add == direction || self.control.add == "both"
    }

    /// Answers (or closes the stream) from `phase` when the request asked for it.
    fn local(&self, phase: &str) -> bool {
        if self.control.close == phase {
            if phase == "request-trailers" {
                self.reset_http_request();
            } else {
                self.reset_http_response();
            }
            return true;
        }
        if self.control.local != phase {
            return false;
        }
        let name = self.name().to_owned();
        self.send_http_response(418, vec![("x-local-from", &name)], Some(format!("local from {name}\n").as_bytes()));
        true
    }
}

impl Context for Trailers {
    fn on_http_call_response(&mut self, _token: u32, num_headers: usize, _body: usize, _trailers: usize) {
        let status = if num_headers == 0 {
            "failed".to_owned()
        } else {
            self.get_http_call_response_header(":status").unwrap_or_default()
        };
        self.add_http_response_trailer("x-resumed-by", &format!("callout {status}"));
        // The upstream echoes the callout's trailers in its JSON body.
        let body = self.get_http_call_response_body(0, usize::MAX).unwrap_or_default();
        let echoed = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let trailer = echoed.as_ref().and_then(|v| v["trailers"]["x-callout-trailer"].as_str()).unwrap_or("none");
        self.add_http_response_trailer("x-callout-trailer-echo", trailer);
        self.resume_http_response();
    }
}

impl HttpContext for Trailers {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let get = |name: &str| self.get_http_request_header(name);
        let mine = |name: &str| targeted(get(name), self.name());
        let control = Control {
            add: mine("x-t-add"),
            pause: mine("x-t-pause"),
            local: mine("x-t-local"),
            close: mine("x-t-close"),
            hold: mine("x-t-hold"),
            declare: get("x-t-declare"),
            log_key: get("x-t-log-key"),
        };
        let fetch = get("x-t-fetch");
        self.control = control;
        if let Some(key) = fetch {
            match self.get_shared_data(&key) {
                (Some(value), _) => self.send_http_response(200, vec![], Some(&value)),
                (None, _) => self.send_http_response(404, vec![], Some(b"no such key\n")),
            }
            return Action::Pause;
        }
        let probes = format!("{},{}", probe(REQUEST_TRAILERS, "k"), probe(RESPONSE_TRAILERS, "k"));
        self.set_http_request_header(&format!("x-t-probe-{}", self.name()), Some(&probes));
        if let Some(names) = &self.control.declare {
            self.set_http_request_header("trailer", Some(names));
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("trailers {}: on_http_request_body ({body_size} bytes, eos {end_of_stream})", self.id);
        self.request_eos.push(end_of_stream);
        if !end_of_stream && self.wants_hold("request") {
            return Action::Pause;
        }
        if end_of_stream && self.wants_add("request") {
            let before = probe(REQUEST_TRAILERS, &format!("x-added-{}", self.name()));
            self.add_http_request_trailer(&format!("x-added-{}", self.name()), &format!("final-body {before}"));
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("trailers {}: on_http_request_trailers ({num_trailers})", self.id);
        self.edit(MapType::HttpRequestTrailers, num_trailers, &self.request_eos);
        if self.wants_hold("request") {
            self.rewrite_held(MapType::HttpRequestTrailers, BufferType::HttpRequestBody);
        }
        if self.local("request-trailers") {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if let Some(names) = &self.control.declare {
            self.set_http_response_header("trailer", Some(names));
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("trailers {}: on_http_response_body ({body_size} bytes, eos {end_of_stream})", self.id);
        self.response_eos.push(end_of_stream);
        if !end_of_stream && self.wants_hold("response") {
            return Action::Pause;
        }
        if end_of_stream && self.wants_add("response") {
            let before = probe(RESPONSE_TRAILERS, &format!("x-added-{}", self.name()));
            self.add_http_response_trailer(&format!("x-added-{}", self.name()), &format!("final-body {before}"));
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("trailers {}: on_http_response_trailers ({num_trailers})", self.id);
        self.edit(MapType::HttpResponseTrailers, num_trailers, &self.response_eos);
        if self.wants_hold("response") {
            self.rewrite_held(MapType::HttpResponseTrailers, BufferType::HttpResponseBody);
        }
        let name = self.name().to_owned();
        self.add_http_response_trailer(&format!("x-request-trailer-{name}"), &probe(REQUEST_TRAILERS, "x-client"));
        let one = self.get_property(vec!["response", "trailers", "x-up-trailer"]);
        let one = one.map_or("none".to_owned(), |v| String::from_utf8_lossy(&v).into_owned());
        self.add_http_response_trailer(&format!("x-property-{name}"), &one);
        let all = self.get_property(vec!["response", "trailers"]).unwrap_or_default();
        let count = all.get(..4).map_or(0, |n| u32::from_le_bytes([n[0], n[1], n[2], n[3]]));
        self.add_http_response_trailer(&format!("x-property-count-{name}"), &count.to_string());
        if self.local("response-trailers") {
            return Action::Pause;
        }
        match self.control.pause.as_str() {
            "tick" => {
                let at = self.get_current_time() + Duration::from_millis(100);
                self.paused.borrow_mut().push((self.id, at));
                Action::Pause
            }
            "callout" => {
                let headers = vec![(":method", "POST"), (":path", "/callout"), (":authority", "callout.internal")];
                let trailers = vec![("x-callout-trailer", self.name())];
                let body = Some(&b"ping"[..]);
                match self.dispatch_http_call(&self.config.cluster, headers, body, trailers, Duration::from_secs(5)) {
                    Ok(_) => Action::Pause,
                    Err(status) => {
                        self.add_http_response_trailer("x-resumed-by", &format!("dispatch failed {status:?}"));
                        Action::Continue
                    }
                }
            }
            _ => Action::Continue,
        }
    }

    fn on_log(&mut self) {
        let Some(key) = self.control.log_key.clone() else { return };
        let report = serde_json::json!({
            "request_value": probe(REQUEST_TRAILERS, "x-client"),
            "request_pairs": hostcalls::get_map(MapType::HttpRequestTrailers).unwrap().len(),
            "request_size": probe_size(REQUEST_TRAILERS),
            "response_value": probe(RESPONSE_TRAILERS, "x-up-trailer"),
            "response_pairs": hostcalls::get_map(MapType::HttpResponseTrailers).unwrap().len(),
            "response_size": probe_size(RESPONSE_TRAILERS),
        });
        let key = format!("{key}/{}", self.name());
        if let Err(status) = self.set_shared_data(&key, Some(report.to_string().as_bytes()), None) {
            warn!("trailers {}: set_shared_data({key}): {status:?}", self.id);
        }
    }
}

impl Drop for Trailers {
    /// `proxy_on_delete`: a tick must never resume a forgotten id.
    fn drop(&mut self) {
        let id = self.id;
        self.paused.borrow_mut().retain(|(paused, _)| *paused != id);
    }
}
