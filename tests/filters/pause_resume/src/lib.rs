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
//! | `on_tick` | for each held context whose deadline has passed: `hostcalls::set_effective_context(id)` then `hostcalls::resume_http_request()`; a context the host no longer knows (BadArgument) is dropped; logs `resumed <id>` at info |
//! | response headers of a held request | sets `x-held: yes` |
//! | context deleted while held | forgotten (never resumed) |
//! | every callback | logs the phase at debug |

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use log::{debug, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(HoldRoot { context_id, held: Rc::default() })
    });
}}

/// Held streams: (context id, resume no earlier than).
type HeldList = Rc<RefCell<Vec<(u32, SystemTime)>>>;

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
        let due: Vec<u32> = {
            let mut held = self.held.borrow_mut();
            let due = held.iter().filter(|(_, deadline)| *deadline <= now).map(|(id, _)| *id).collect();
            held.retain(|(_, deadline)| *deadline > now);
            due
        };
        for id in due {
            match hostcalls::set_effective_context(id) {
                Ok(()) => {
                    hostcalls::resume_http_request().unwrap();
                    info!("resumed {id}");
                }
                Err(status) => warn!("pause_resume root {}: set_effective_context({id}): {status:?}", self.context_id),
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("pause_resume {context_id}: create_http_context");
        Some(Box::new(Hold { context_id, held_list: self.held.clone(), held: false }))
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
        let Some(ms) = self.get_http_request_header("x-hold-ms").and_then(|v| v.trim().parse::<u64>().ok()) else {
            return Action::Continue;
        };
        let deadline = self.get_current_time() + Duration::from_millis(ms);
        self.held_list.borrow_mut().push((self.context_id, deadline));
        self.held = true;
        debug!("pause_resume {}: holding for {ms} ms", self.context_id);
        Action::Pause
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!(
            "pause_resume {}: on_http_response_headers ({num_headers} headers, eos {end_of_stream})",
            self.context_id
        );
        if self.held {
            self.set_http_response_header("x-held", Some("yes"));
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
        self.held_list.borrow_mut().retain(|(held, _)| *held != id);
    }
}
