//! `state`: a proxy-wasm test filter for Weir's integration tests (not a shipped filter).
//!
//! It exercises the process-wide state hostcalls: shared data with CAS, shared queues and
//! `on_queue_ready`, metrics, properties, and the root context's timer.
//!
//! | trigger | effect |
//! |---|---|
//! | `on_configure` | registers shared queue `events`; defines counter `test_requests_total`, gauge `test_in_flight`, histogram `test_body_sizes`; `set_tick_period(50 ms)` |
//! | `on_tick` | logs `tick` at info on the first tick only (the timer keeps running) |
//! | `on_queue_ready` | dequeues every item of the queue, adds them to a count (logged at debug) and publishes the count as shared data `dequeued` |
//! | request headers | counter +1; gauge +1; histogram records `x-size` if it parses as u64; shared key `hits` (decimal u64, missing → 0) set to +1 with a CAS retry loop (up to 10 retries on CasMismatch); enqueues `:path` on `events`; `set_property(["wasm_test_path"], path)` (one segment: Envoy round-trips only those) then reads it back; answers with a local reply 200, `content-type: application/json`, body `{"hits":N,"counter":C,"gauge":G,"property":"<read back>","source_address":"<source.address>"\|null,"request_path":"<request.path>"\|null,"plugin_name":"<plugin_name>"\|null,"dequeued":N\|null}` (C and G from `get_metric`, null if it fails; `property` null if absent); returns Pause |
//! | CAS retries exhausted | local reply 500, body `hits: CAS retries exhausted\n` (no JSON) |
//! | `on_log` | gauge −1 (only if this request incremented it) |
//! | every callback | logs the phase at debug |

use std::time::Duration;

use log::{debug, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(StateRoot { context_id, ids: Ids::default(), ticked: false, dequeued: 0 })
    });
}}

/// Ids handed out by the host in `on_configure`, copied into every stream context.
#[derive(Clone, Copy, Default)]
struct Ids {
    queue: u32,
    counter: u32,
    gauge: u32,
    histogram: u32,
}

struct StateRoot {
    context_id: u32,
    ids: Ids,
    ticked: bool,
    dequeued: u64,
}

impl Context for StateRoot {}

impl RootContext for StateRoot {
    fn on_vm_start(&mut self, vm_configuration_size: usize) -> bool {
        debug!("state root {}: on_vm_start ({vm_configuration_size} bytes)", self.context_id);
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        debug!("state root {}: on_configure ({plugin_configuration_size} bytes)", self.context_id);
        self.ids = Ids {
            queue: self.register_shared_queue("events"),
            counter: hostcalls::define_metric(MetricType::Counter, "test_requests_total").unwrap(),
            gauge: hostcalls::define_metric(MetricType::Gauge, "test_in_flight").unwrap(),
            histogram: hostcalls::define_metric(MetricType::Histogram, "test_body_sizes").unwrap(),
        };
        self.set_tick_period(Duration::from_millis(50));
        true
    }

    fn on_tick(&mut self) {
        if !self.ticked {
            self.ticked = true;
            info!("tick");
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        debug!("state root {}: on_queue_ready (queue {queue_id})", self.context_id);
        loop {
            match self.dequeue_shared_queue(queue_id) {
                Ok(Some(_)) => self.dequeued += 1,
                Ok(None) => break,
                Err(status) => {
                    warn!("state root {}: dequeue failed: {status:?}", self.context_id);
                    break;
                }
            }
        }
        debug!("state root {}: dequeued {} items so far", self.context_id, self.dequeued);
        // Published so requests can show that on_queue_ready ran (shared data key "dequeued").
        if let Err(status) = self.set_shared_data("dequeued", Some(self.dequeued.to_string().as_bytes()), None) {
            warn!("state root {}: publishing the dequeued count failed: {status:?}", self.context_id);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        debug!("state {context_id}: create_http_context");
        Some(Box::new(State { context_id, ids: self.ids, in_flight: false }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct State {
    context_id: u32,
    ids: Ids,
    /// Whether this request incremented the gauge (so `on_log` decrements it once).
    in_flight: bool,
}

impl State {
    /// Increments shared key `hits` with compare-and-swap; `None` when every retry lost the race.
    fn bump_hits(&self) -> Option<u64> {
        for attempt in 0..=10 {
            let (value, cas) = self.get_shared_data("hits");
            let current =
                value.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
            let next = current + 1;
            match self.set_shared_data("hits", Some(next.to_string().as_bytes()), cas) {
                Ok(()) => return Some(next),
                Err(Status::CasMismatch) => {
                    debug!("state {}: CAS mismatch on hits (attempt {attempt})", self.context_id)
                }
                Err(status) => {
                    warn!("state {}: set_shared_data failed: {status:?}", self.context_id);
                    return None;
                }
            }
        }
        None
    }

    fn property_string(&self, path: Vec<&str>) -> Option<String> {
        match hostcalls::get_property(path.clone()) {
            Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            Err(status) => {
                warn!("state {}: get_property({path:?}) failed: {status:?}", self.context_id);
                None
            }
        }
    }
}

/// Logs a failed metric hostcall instead of trapping, so the JSON answer still shows what happened.
fn check(what: &str, result: Result<(), Status>) {
    if let Err(status) = result {
        warn!("state: {what} failed: {status:?}");
    }
}

impl Context for State {
    fn on_done(&mut self) -> bool {
        debug!("state {}: on_done", self.context_id);
        true
    }
}

impl HttpContext for State {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("state {}: on_http_request_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        let ids = self.ids;
        check("increment counter", hostcalls::increment_metric(ids.counter, 1));
        check("increment gauge", hostcalls::increment_metric(ids.gauge, 1));
        self.in_flight = true;
        if let Some(size) = self.get_http_request_header("x-size").and_then(|s| s.trim().parse::<u64>().ok()) {
            check("record histogram", hostcalls::record_metric(ids.histogram, size));
        }

        let Some(hits) = self.bump_hits() else {
            self.send_http_response(500, vec![], Some(b"hits: CAS retries exhausted\n"));
            return Action::Pause;
        };

        let path = self.get_http_request_header(":path").unwrap_or_default();
        if let Err(status) = self.enqueue_shared_queue(ids.queue, Some(path.as_bytes())) {
            warn!("state {}: enqueue failed: {status:?}", self.context_id);
        }
        self.set_property(vec!["wasm_test_path"], Some(path.as_bytes()));
        let property = self.property_string(vec!["wasm_test_path"]);

        let counter = hostcalls::get_metric(ids.counter).ok();
        let gauge = hostcalls::get_metric(ids.gauge).ok();
        let body = serde_json::json!({
            "hits": hits,
            "counter": counter,
            "gauge": gauge,
            "property": property,
            "source_address": self.property_string(vec!["source", "address"]),
            "request_path": self.property_string(vec!["request", "path"]),
            "plugin_name": self.property_string(vec!["plugin_name"]),
            "dequeued": self
                .get_shared_data("dequeued")
                .0
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok()),
        });
        let body = body.to_string();
        self.send_http_response(200, vec![("content-type", "application/json")], Some(body.as_bytes()));
        Action::Pause
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("state {}: on_http_response_headers ({num_headers} headers, eos {end_of_stream})", self.context_id);
        Action::Continue
    }

    fn on_log(&mut self) {
        debug!("state {}: on_log", self.context_id);
        if std::mem::take(&mut self.in_flight) {
            check("decrement gauge", hostcalls::increment_metric(self.ids.gauge, -1));
        }
    }
}
