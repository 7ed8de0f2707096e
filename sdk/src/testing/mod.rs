//! A fake host for unit tests of filter logic, natively (level (a) of the filter test kit).
//!
//! When the SDK is compiled for anything but `wasm32`, every hostcall goes to a fake host kept per thread.
//! [`FakeHost`] starts and configures your plugin, runs requests through [`FakeStream`] with the same dispatcher
//! the `.wasm` exports use, answers callouts, fires ticks and delivers queue notifications; then you assert on what
//! the filter did: headers and bodies as it left them, its local response, the callouts it sent, shared data,
//! metrics, logs, and every hostcall it made.
//!
//! One `FakeHost` per test (per thread) at a time: creating one resets the thread's fake state. The fake keeps
//! the ABI's statuses and encodings but not the phase rules of a real host (which map is writable when): a
//! filter that writes request headers from a response callback passes here and gets `BadArgument` in Weir. Run
//! the built `.wasm` in Weir for those.
//!
//! ```
//! use std::time::Duration;
//! use weir_sdk::prelude::*;
//! use weir_sdk::testing::FakeHost;
//!
//! #[derive(Default)]
//! struct Auth;
//!
//! impl Plugin for Auth {
//!     type Config = ();
//!     type Filter = Check;
//!     fn create_filter(&mut self, _stream: ContextId) -> Check {
//!         Check
//!     }
//! }
//!
//! struct Check;
//!
//! impl HttpFilter for Check {
//!     fn on_request_headers(&mut self, headers: Headers, _end_of_stream: bool) -> Action {
//!         let user = headers.get("x-user").unwrap_or_default();
//!         let sent = HttpCall::get("auth", &format!("/users/{user}"))
//!             .timeout(Duration::from_millis(200))
//!             .dispatch(|_: &mut Check, answer: CallResult| match answer {
//!                 Ok(answer) if answer.status == 200 => http::resume_request(),
//!                 _ => _ = http::send_response(403, &[], b"denied\n"),
//!             });
//!         if sent.is_err() {
//!             return http::send_response(503, &[], b"");
//!         }
//!         Action::Pause
//!     }
//! }
//!
//! let mut host = FakeHost::<Auth>::new();
//! assert!(host.configure(""));
//!
//! // Allowed: the request waits for the callout, then resumes.
//! let mut request = host.stream();
//! assert_eq!(request.send_request_headers(&[(":path", "/"), ("x-user", "ada")], true), Action::Pause);
//! let callout = request.callouts().pop().unwrap();
//! assert_eq!((callout.cluster.as_str(), callout.header(":path")), ("auth", Some("/users/ada")));
//! assert_eq!(callout.timeout_ms, 200);
//! request.respond(callout.token, 200, &[], b"");
//! assert!(request.request_resumed());
//!
//! // Denied: the callback answers 403.
//! let mut request = host.stream();
//! request.send_request_headers(&[(":path", "/"), ("x-user", "eve")], true);
//! let token = request.callouts()[0].token;
//! request.respond(token, 404, &[], b"");
//! assert_eq!(request.local_response().unwrap().status, 403);
//! ```

pub(crate) mod hostcalls;
mod state;
mod stream;

pub use state::{Callout, LocalResponse, LogEntry};
pub use stream::FakeStream;

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::abi::{LogLevel, MetricType, Status};
use crate::dispatch::Dispatcher;
use crate::plugin::Plugin;
use state::{to_pairs, with, Answer};

/// The root context id the fake gives the plugin.
const ROOT: u32 = 1;

/// A fake proxy-wasm host running one plugin natively. See the [module docs](self).
pub struct FakeHost<P: Plugin> {
    dispatcher: Dispatcher<P>,
    next_context: u32,
    /// What `on_vm_start` returned, once it ran.
    started: Option<bool>,
}

impl<P: Plugin + Default> FakeHost<P> {
    /// A fresh fake host with the plugin built by `Default` (its root context created, not yet configured).
    pub fn new() -> FakeHost<P> {
        FakeHost::with_plugin(P::default)
    }
}

impl<P: Plugin + Default> Default for FakeHost<P> {
    fn default() -> Self {
        FakeHost::new()
    }
}

impl<P: Plugin> FakeHost<P> {
    /// A fresh fake host with the plugin built by `new_plugin`, as `filter!(Plugin, new_plugin)` does.
    pub fn with_plugin(new_plugin: fn() -> P) -> FakeHost<P> {
        state::reset();
        crate::callout::reset();
        crate::logger::install();
        with(|s| s.roots.push(ROOT));
        let mut host = FakeHost { dispatcher: Dispatcher::new(new_plugin), next_context: ROOT + 1, started: None };
        host.enter(ROOT);
        host.dispatcher.on_context_create(ROOT, 0);
        host
    }

    /// Starts the plugin with a VM configuration (`on_vm_start`); [`configure`](FakeHost::configure) does it with
    /// an empty one if this was not called. Returns what the plugin returned.
    pub fn start(&mut self, vm_configuration: &str) -> bool {
        with(|s| s.vm_configuration = vm_configuration.as_bytes().to_vec());
        self.enter(ROOT);
        let started = self.dispatcher.on_vm_start(ROOT, vm_configuration.len());
        self.started = Some(started);
        started
    }

    /// Configures the plugin (`on_configure`) with `configuration`, JSON as in the attachment's
    /// `configuration`; returns whether the plugin accepted it (never, after a failed start, as a failed VM is
    /// never configured). The configuration is readable only during the call.
    pub fn configure(&mut self, configuration: &str) -> bool {
        let started = match self.started {
            Some(started) => started,
            None => self.start(""),
        };
        if !started {
            return false;
        }
        with(|s| s.plugin_configuration = configuration.as_bytes().to_vec());
        self.enter(ROOT);
        let accepted = self.dispatcher.on_configure(ROOT, configuration.len());
        with(|s| s.plugin_configuration.clear());
        accepted
    }

    /// Stops the plugin as the host does when it is removed: `on_done`, and `on_delete` when that returned `true`
    /// (otherwise the plugin finishes with `context::done()` later). Returns what `on_done` returned.
    pub fn stop(&mut self) -> bool {
        self.enter(ROOT);
        let done = self.dispatcher.on_done(ROOT);
        if done {
            self.dispatcher.on_delete(ROOT);
        } else {
            with(|s| s.stopping = true);
        }
        done
    }

    /// After an asynchronous callback: deletes a stopping plugin that called `proxy_done`.
    fn settle(&mut self) {
        if with(|s| std::mem::take(&mut s.done)) {
            self.dispatcher.on_delete(ROOT);
        }
    }

    /// Whether the plugin still exists (not deleted by [`stop`](FakeHost::stop)).
    pub fn running(&self) -> bool {
        self.dispatcher.plugin(ROOT).is_some()
    }

    /// The plugin. Panics after [`stop`](FakeHost::stop) deleted it.
    pub fn plugin(&self) -> &P {
        self.dispatcher.plugin(ROOT).expect("the fake host's plugin exists until it is dropped")
    }

    /// The plugin, mutably. Panics after [`stop`](FakeHost::stop) deleted it.
    pub fn plugin_mut(&mut self) -> &mut P {
        self.dispatcher.plugin_mut(ROOT).expect("the fake host's plugin exists until it is dropped")
    }

    /// Starts a request: a new stream context and its filter ([`Plugin::create_filter`]).
    pub fn stream(&mut self) -> FakeStream<'_, P> {
        let id = self.next_context;
        self.next_context += 1;
        with(|s| s.streams.insert(id, Default::default()));
        self.enter(id);
        self.dispatcher.on_context_create(id, ROOT);
        FakeStream::new(self, id)
    }

    /// A request started earlier by [`stream`](FakeHost::stream) and not finished, by its id.
    pub fn stream_by_id(&mut self, id: u32) -> Option<FakeStream<'_, P>> {
        let exists = with(|s| s.streams.contains_key(&id)) && self.dispatcher.filter(id).is_some();
        exists.then(|| FakeStream::new(self, id))
    }

    /// The callouts sent and not answered yet, oldest first.
    pub fn callouts(&self) -> Vec<Callout> {
        with(|s| s.callouts.values().cloned().collect())
    }

    /// Answers callout `token` with `status`, `headers` (`:status` is added) and `body`, calling the filter's
    /// callback. Panics if no such callout is pending.
    pub fn respond(&mut self, token: u32, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.respond_with_trailers(token, status, headers, body, &[]);
    }

    /// [`respond`](FakeHost::respond) with trailers.
    pub fn respond_with_trailers(
        &mut self,
        token: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
        trailers: &[(&str, &str)],
    ) {
        let mut all = to_pairs(&[(":status", &status.to_string())]);
        all.extend(to_pairs(headers));
        let (headers, body_len, trailers_len) = (all.len(), body.len(), trailers.len());
        with(|s| {
            s.callouts.remove(&token).unwrap_or_else(|| panic!("no pending callout {token}"));
            s.status = (0, Vec::new());
            s.answer = Some(Answer { headers: all, body: body.to_vec(), trailers: to_pairs(trailers) });
        });
        self.enter(ROOT);
        self.dispatcher.on_http_call_response(ROOT, token, headers, body_len, trailers_len);
        with(|s| s.answer = None);
        self.settle();
    }

    /// Fails callout `token` as a reset or refused connection (no headers; `proxy_get_status` gives 11 `reset`).
    pub fn fail_callout(&mut self, token: u32) {
        with(|s| {
            s.callouts.remove(&token).unwrap_or_else(|| panic!("no pending callout {token}"));
            s.status = (Status::BrokenConnection.as_u32(), b"reset".to_vec());
        });
        self.enter(ROOT);
        self.dispatcher.on_http_call_response(ROOT, token, 0, 0, 0);
        self.settle();
    }

    /// The tick period the plugin set (`None`: no timer).
    pub fn tick_period(&self) -> Option<Duration> {
        with(|s| (s.tick_period_ms > 0).then(|| Duration::from_millis(u64::from(s.tick_period_ms))))
    }

    /// Fires one tick (`on_tick`) if the plugin set a timer, advancing the clock by the period; returns whether it
    /// fired.
    pub fn tick(&mut self) -> bool {
        let Some(period) = self.tick_period() else { return false };
        with(|s| s.time_nanos += period.as_nanos() as u64);
        self.enter(ROOT);
        self.dispatcher.on_tick(ROOT);
        self.settle();
        true
    }

    /// Enqueues `item` on queue `name` as another VM would (creating the queue if needed), then delivers
    /// notifications.
    pub fn enqueue(&mut self, name: &str, item: &[u8]) {
        with(|s| {
            let id = hostcalls::queue_id(s, name, true);
            hostcalls::push(s, id, item).expect("the queue was just created");
        });
        self.deliver_queues();
    }

    /// Delivers pending `on_queue_ready` notifications (the host posts them after the callback that enqueued);
    /// returns how many.
    pub fn deliver_queues(&mut self) -> usize {
        let ready = with(|s| std::mem::take(&mut s.ready_queues));
        for &queue in &ready {
            self.enter(ROOT);
            self.dispatcher.on_queue_ready(ROOT, queue);
        }
        self.settle();
        ready.len()
    }

    /// The items waiting on queue `name`, oldest first (empty if there is no such queue).
    pub fn queue(&self, name: &str) -> Vec<Vec<u8>> {
        with(|s| s.queues.iter().find(|q| q.name == name).map(|q| q.items.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// The shared value under `key`.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        with(|s| s.shared.get(key.as_bytes()).map(|(value, _)| value.clone()))
    }

    /// Stores a shared value as another VM would (its CAS changes).
    pub fn set_shared_data(&mut self, key: &str, value: &[u8]) {
        with(|s| hostcalls::store(s, key.as_bytes(), value, 0)).expect("an unconditional store succeeds");
    }

    /// The value of counter or gauge `name` (`None` if not defined).
    pub fn metric(&self, name: &str) -> Option<i64> {
        with(|s| s.metrics.iter().find(|m| m.name == name && m.kind != MetricType::Histogram).map(|m| m.value))
    }

    /// The observations of histogram `name`.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        with(|s| {
            s.metrics.iter().find(|m| m.name == name && m.kind == MetricType::Histogram).map(|m| m.samples.clone())
        })
        .unwrap_or_default()
    }

    /// Sets a host-wide property (every stream reads it unless it has its own), e.g.
    /// `host.set_property(&["source", "address"], "10.0.0.1:5000")`. Values are bytes in the ABI encodings
    /// ([`crate::abi::encode_i64`] for ints).
    pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) {
        with(|s| s.properties.insert(path.join("\0").into_bytes(), value.as_ref().to_vec()));
    }

    /// Registers foreign function `name` (`proxy_call_foreign_function`).
    pub fn set_foreign_function(&mut self, name: &str, function: impl Fn(&[u8]) -> Result<Vec<u8>, Status> + 'static) {
        with(|s| s.foreign.insert(name.to_owned(), Rc::new(function)));
    }

    /// Sets the clock (`time::now()`).
    pub fn set_time(&mut self, time: SystemTime) {
        let nanos = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        with(|s| s.time_nanos = nanos);
    }

    /// Sets the level `proxy_get_log_level` reports (every record is kept in [`logs`](FakeHost::logs) anyway).
    pub fn set_log_level(&mut self, level: LogLevel) {
        with(|s| s.log_level = level);
    }

    /// Every line logged so far.
    pub fn logs(&self) -> Vec<LogEntry> {
        with(|s| s.logs.clone())
    }

    /// Whether a line containing `text` was logged.
    pub fn logged(&self, text: &str) -> bool {
        with(|s| s.logs.iter().any(|entry| entry.message.contains(text)))
    }

    /// The names of every hostcall made so far, in order (`proxy_log`, `proxy_http_call`, ...).
    pub fn calls(&self) -> Vec<&'static str> {
        with(|s| s.calls.clone())
    }

    /// Forgets the recorded logs and calls.
    pub fn clear_records(&mut self) {
        with(|s| {
            s.logs.clear();
            s.calls.clear();
        });
    }

    /// Makes `context` the current one, with no effective override, as the host does before a callback.
    fn enter(&mut self, context: u32) {
        with(|s| {
            s.current = context;
            s.effective = None;
        });
    }
}
