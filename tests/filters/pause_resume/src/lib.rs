//! `pause_resume`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It exercises resuming a paused request from outside the stream's own callbacks: the root
//! context's timer calls `proxy_set_effective_context(stream)` and then
//! `proxy_continue_stream(HTTP_REQUEST)`, as the Go SDK's `postpone_requests` example does.
//!
//! | trigger | effect |
//! |---|---|
//! | `on_configure` | `set_tick_period(10 ms)` |
//! | request header `x-hold-ms: N` (u64) | records the context id with a deadline now + N ms (host clock, `proxy_get_current_time_nanoseconds`); returns Pause |
//! | `x-hold-ms` absent or not a u64 | Continue, not held |
//! | request header `x-hold-body-ms: N` | removes `content-length`; the last request body callback (`eos = 1`) is held: recorded with a deadline now + N ms; returns Pause |
//! | request header `x-hold-response-body-ms: N` | the same for the last response body callback (`content-length` removed in the response headers) |
//! | `on_tick` | for each held context whose deadline has passed: `hostcalls::set_effective_context(id)`; a held body gets `[resumed]` appended (`set_buffer` on the request or response body, from the tick); then `hostcalls::resume_http_request()` (or `resume_http_response()` for a held response body); a context the host no longer knows (BadArgument) is dropped; logs `resumed <id>` at info |
//! | request header `x-inspect-response: 1` | response headers: removes `content-length`, sets `x-inspected: yes`, and returns Pause; response body: Pause until `eos = 1`, then a body containing `reject` is answered with a local 502 `rejected by its body`, any other is replaced by its ASCII-uppercase form, gets `x-verdict: accepted` (set from the body callback) and goes on (Continue); attach with `allow_on_headers_stop_iteration` for body callbacks to run while the headers wait |
//! | request header `x-inspect-request: 1` | request headers: Pause; request body: Pause until `eos = 1`, then a body containing `reject` is answered with a local 403 `rejected by its body`, any other is replaced by its ASCII-uppercase form, gets request header `x-body-seen: <size>` (set from the body callback) and goes on (Continue); attach with `allow_on_headers_stop_iteration` for the body callbacks to run while the headers wait |
//! | request header `x-inspect-request: body` | as `1`, but the request headers go on at once (Continue, `content-length` removed): the body is judged while the upstream already has the headers, so a rejection abandons a request in flight; no `x-body-seen` |
//! | response headers of a held request | sets `x-held: yes` |
//! | context deleted while held | forgotten (never resumed) |
//! | every callback | logs the phase at debug |

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use log::{debug, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(HoldRoot { context_id, held: Rc::default() })
    });
}}

/// What a stream is held in.
#[derive(Clone, Copy, PartialEq)]
enum Held {
    /// Its request headers.
    Headers,
    /// Its last request body callback.
    RequestBody,
    /// Its last response body callback.
    ResponseBody,
}

/// Held streams: (context id, what is held, resume no earlier than).
type HeldList = Rc<RefCell<Vec<(u32, Held, SystemTime)>>>;

struct HoldRoot {
    context_id: u32,
    held: HeldList,
}

impl Context for HoldRoot {}

impl RootContext for HoldRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        debug!("pause_resume root {}: on_configure ({plugin_configuration_size} bytes)", self.context_id);
        self.set_tick_period(Duration::from_millis(10));
        true
    }

    fn on_tick(&mut self) {
        let now = self.get_current_time();
        let due: Vec<(u32, Held)> = {
            let mut held = self.held.borrow_mut();
            let due =
                held.iter().filter(|(_, _, deadline)| *deadline <= now).map(|(id, what, _)| (*id, *what)).collect();
            held.retain(|(_, _, deadline)| *deadline > now);
            due
        };
        for (id, what) in due {
            match hostcalls::set_effective_context(id) {
                Ok(()) => {
                    let buffer = match what {
                        Held::Headers => None,
                        Held::RequestBody => Some(BufferType::HttpRequestBody),
                        Held::ResponseBody => Some(BufferType::HttpResponseBody),
                    };
                    if let Some(buffer) = buffer {
                        // Appended at the end of the held body: start = its size, nothing replaced.
                        let size = hostcalls::get_buffer(buffer, 0, usize::MAX).ok().flatten().map_or(0, |b| b.len());
                        hostcalls::set_buffer(buffer, size, 0, b"[resumed]").unwrap();
                    }
                    if what == Held::ResponseBody {
                        hostcalls::resume_http_response().unwrap();
                    } else {
                        hostcalls::resume_http_request().unwrap();
                    }
                    info!("resumed {id}");
                }
                Err(status) => warn!("pause_resume root {}: set_effective_context({id}): {status:?}", self.context_id),
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("pause_resume {context_id}: create_http_context");
        Some(Box::new(Hold {
            context_id,
            held_list: self.held.clone(),
            held: false,
            hold_body: None,
            hold_response_body: None,
            inspect_response: false,
            inspect_request: false,
            inspect_body_only: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Hold {
    context_id: u32,
    held_list: HeldList,
    /// Whether this request was paused for a later resume.
    held: bool,
    /// Hold the last request body callback this long (ms).
    hold_body: Option<u64>,
    /// Hold the last response body callback this long (ms).
    hold_response_body: Option<u64>,
    /// Pause the response headers and decide on them from the whole response body.
    inspect_response: bool,
    /// The same for the request.
    inspect_request: bool,
    inspect_body_only: bool,
}

impl Hold {
    fn hold(&mut self, what: Held, ms: u64) -> Action {
        let deadline = self.get_current_time() + Duration::from_millis(ms);
        self.held_list.borrow_mut().push((self.context_id, what, deadline));
        self.held = true;
        debug!("pause_resume {}: holding for {ms} ms", self.context_id);
        Action::Pause
    }
}

impl Context for Hold {
    fn on_done(&mut self) -> bool {
        debug!("pause_resume {}: on_done", self.context_id);
        true
    }
}

impl HttpContext for Hold {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!(
            "pause_resume {}: on_http_request_headers ({num_headers} headers, eos {end_of_stream})",
            self.context_id
        );
        let ms =
            |this: &Self, name: &str| this.get_http_request_header(name).and_then(|v| v.trim().parse::<u64>().ok());
        self.hold_body = ms(self, "x-hold-body-ms");
        self.hold_response_body = ms(self, "x-hold-response-body-ms");
        self.inspect_response = self.get_http_request_header("x-inspect-response").as_deref() == Some("1");
        let inspect = self.get_http_request_header("x-inspect-request");
        self.inspect_request = matches!(inspect.as_deref(), Some("1" | "body"));
        self.inspect_body_only = inspect.as_deref() == Some("body");
        if self.inspect_body_only {
            self.set_http_request_header("content-length", None);
            return Action::Continue;
        }
        if self.inspect_request && !end_of_stream {
            self.set_http_request_header("content-length", None);
            return Action::Pause;
        }
        if self.hold_body.is_some() {
            // The held body grows on resume: its length is not the client's any more.
            self.set_http_request_header("content-length", None);
        }
        match ms(self, "x-hold-ms") {
            Some(ms) => self.hold(Held::Headers, ms),
            None => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("pause_resume {}: on_http_request_body ({body_size} bytes, eos {end_of_stream})", self.context_id);
        if self.inspect_request {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self.get_http_request_body(0, body_size).unwrap_or_default();
            if body.windows(6).any(|w| w == b"reject") {
                self.send_http_response(403, vec![("content-type", "text/plain")], Some(b"rejected by its body"));
                return Action::Pause;
            }
            self.set_http_request_body(0, body_size, &body.to_ascii_uppercase());
            if !self.inspect_body_only {
                // Still writable: the headers wait for this callback's answer.
                self.set_http_request_header("x-body-seen", Some(&body_size.to_string()));
            }
            return Action::Continue;
        }
        match self.hold_body {
            Some(ms) if end_of_stream => self.hold(Held::RequestBody, ms),
            _ => Action::Continue,
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("pause_resume {}: on_http_response_body ({body_size} bytes, eos {end_of_stream})", self.context_id);
        if self.inspect_response {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self.get_http_response_body(0, body_size).unwrap_or_default();
            if body.windows(6).any(|w| w == b"reject") {
                self.send_http_response(502, vec![("content-type", "text/plain")], Some(b"rejected by its body"));
                return Action::Pause;
            }
            self.set_http_response_body(0, body_size, &body.to_ascii_uppercase());
            // Still writable: the headers wait for this callback's answer.
            self.set_http_response_header("x-verdict", Some("accepted"));
            return Action::Continue;
        }
        match self.hold_response_body {
            Some(ms) if end_of_stream => self.hold(Held::ResponseBody, ms),
            _ => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!(
            "pause_resume {}: on_http_response_headers ({num_headers} headers, eos {end_of_stream})",
            self.context_id
        );
        if self.held {
            self.set_http_response_header("x-held", Some("yes"));
        }
        if self.hold_response_body.is_some() {
            self.set_http_response_header("content-length", None);
        }
        if self.inspect_response && !end_of_stream {
            self.set_http_response_header("content-length", None);
            self.set_http_response_header("x-inspected", Some("yes"));
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        debug!("pause_resume {}: on_log", self.context_id);
    }
}

impl Drop for Hold {
    /// `proxy_on_delete` drops the context: make sure the timer never resumes a forgotten id.
    fn drop(&mut self) {
        let id = self.context_id;
        self.held_list.borrow_mut().retain(|(held, _, _)| *held != id);
    }
}
