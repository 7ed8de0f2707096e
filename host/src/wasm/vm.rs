//! One VM: a module instance in its own store, started (`_initialize`, or `_start`), with its lifecycle
//! callbacks resolved once. Every call into the guest runs under the epoch deadline; a trap or an exceeded
//! limit marks the VM failed, and a failed VM is never called again.

use super::deadline::Watch;
use super::engine::WasmRuntime;
use super::module::LoadedModule;
use crate::abi::callout::{Callout, CalloutResponse};
use crate::abi::stream::{Headers, LocalResponse, Phase, RequestInfo, StreamData};
use crate::abi::{PluginInfo, VmIdentity, VmState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wasmtime::{Instance, Store, StoreLimitsBuilder, TypedFunc};
use weir_sdk::abi::Action;

/// Why a VM could not start or a root context was refused.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// Instantiation or the start function failed.
    #[error("module {module}: cannot start: {detail}")]
    Start {
        /// Module name.
        module: String,
        /// What failed.
        detail: String,
    },
    /// The guest trapped or exceeded a limit.
    #[error("module {module}: {callback} failed: {detail}")]
    Trap {
        /// Module name.
        module: String,
        /// The callback.
        callback: &'static str,
        /// The trap, with the guest's backtrace when it has names.
        detail: String,
        /// The root cause alone (e.g. "wasm trap: wasm `unreachable` instruction executed").
        cause: String,
    },
    /// `proxy_on_vm_start` returned false.
    #[error("module {module}: proxy_on_vm_start refused to start{}", render_logs(.logs))]
    VmStartRefused {
        /// Module name.
        module: String,
        /// The filter's own log lines during the call.
        logs: Vec<String>,
    },
    /// `proxy_on_configure` returned false.
    #[error("module {module}: the filter rejected its configuration{}", render_logs(.logs))]
    ConfigureRefused {
        /// Module name.
        module: String,
        /// The filter's own log lines during the call.
        logs: Vec<String>,
    },
    /// The VM failed earlier and is not called again.
    #[error("module {module}: the VM has failed and is waiting to be replaced")]
    Failed {
        /// Module name.
        module: String,
    },
}

impl VmError {
    /// A one-line summary for clients: what failed, without the guest's backtrace (that goes to the log).
    pub fn summary(&self) -> String {
        match self {
            VmError::Trap { module, callback, cause, .. } => format!("module {module}: {callback} trapped: {cause}"),
            other => other.to_string(),
        }
    }
}

fn render_logs(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; the filter logged: {}", lines.join(" | "))
    }
}

/// Typed handles to the lifecycle exports; absent (or of another signature) means "not exported".
struct Lifecycle {
    context_create: Option<TypedFunc<(u32, u32), ()>>,
    vm_start: Option<TypedFunc<(u32, u32), u32>>,
    configure: Option<TypedFunc<(u32, u32), u32>>,
    done: Option<TypedFunc<u32, u32>>,
    delete: Option<TypedFunc<u32, ()>>,
}

/// `proxy_on_http_call_response(root, token, headers, body, trailers)`.
type CallResponseFn = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// Typed handles to the HTTP stream exports.
struct HttpCallbacks {
    tick: Option<TypedFunc<u32, ()>>,
    queue_ready: Option<TypedFunc<(u32, u32), ()>>,
    http_call_response: Option<CallResponseFn>,
    request_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    request_headers_v1: Option<TypedFunc<(u32, u32), u32>>,
    request_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    response_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    response_headers_v1: Option<TypedFunc<(u32, u32), u32>>,
    response_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    request_trailers: Option<TypedFunc<(u32, u32), u32>>,
    response_trailers: Option<TypedFunc<(u32, u32), u32>>,
    log: Option<TypedFunc<u32, ()>>,
}

/// Why a paused stream should look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// `proxy_continue_stream` for one direction.
    Resume {
        /// The request side (else the response side).
        request: bool,
    },
    /// A local response or a close was asked for.
    Answered,
}

/// What a filter decided in a callback.
#[derive(Debug)]
pub struct Outcome {
    /// Continue or Pause, as returned.
    pub action: Action,
    /// A local response it asked for.
    pub local_response: Option<LocalResponse>,
    /// It called `proxy_close_stream`.
    pub close: bool,
}

/// A running VM.
pub struct Vm {
    store: Store<VmState>,
    lifecycle: Arc<Lifecycle>,
    http: Arc<HttpCallbacks>,
    module: Arc<LoadedModule>,
    /// Epoch ticks to the first deadline check of a call (half the deadline; see `deadline.rs`).
    deadline_ticks: u64,
    /// Calls into the guest so far, shared with the deadline check so it knows a new call started (only this
    /// VM's thread writes it).
    call_number: Arc<AtomicU64>,
    next_context_id: u32,
    failed: bool,
    _instance: Instance,
}

impl Vm {
    /// Instantiates `module` for `worker` and runs its start function.
    pub fn start(
        runtime: &WasmRuntime,
        module: Arc<LoadedModule>,
        worker: usize,
        vm_id: Arc<str>,
        vm_configuration: Arc<[u8]>,
    ) -> Result<Vm, VmError> {
        Self::start_with_environment(runtime, module, worker, vm_id, vm_configuration, Arc::from(Vec::new()))
    }

    /// [`start`](Self::start) with the environment WASI `environ_get` shows the module (from its start
    /// function on, where Go and C runtimes read it).
    pub fn start_with_environment(
        runtime: &WasmRuntime,
        module: Arc<LoadedModule>,
        worker: usize,
        vm_id: Arc<str>,
        vm_configuration: Arc<[u8]>,
        environment: Arc<[(String, String)]>,
    ) -> Result<Vm, VmError> {
        let limits = runtime.limits();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .table_elements(limits.table_elements)
            .instances(1)
            .memories(1)
            .tables(4)
            .trap_on_grow_failure(true)
            .build();
        let identity =
            VmIdentity { module: module.name.as_str().into(), digest: module.digest.as_str().into(), worker };
        let mut store = Store::new(
            runtime.engine(),
            VmState::new(identity, runtime.host().clone(), vm_id, store_limits, vm_configuration),
        );
        store.data_mut().environment = environment;
        store.limiter(|s| &mut s.limits);
        let deadline_ticks = limits.check_ticks();
        let call_number = Arc::new(AtomicU64::new(0));
        store.epoch_deadline_callback({
            let (call_number, interval, cpu_clock) = (call_number.clone(), limits.check_interval(), limits.cpu_clock);
            let mut seen = (u64::MAX, Watch::default());
            move |_| {
                let call = call_number.load(Ordering::Relaxed);
                if seen.0 != call {
                    seen = (call, Watch::default());
                }
                Ok(seen.1.check(cpu_clock(), interval, deadline_ticks))
            }
        });
        store.set_epoch_deadline(deadline_ticks);
        let start_err = |detail: String| VmError::Start { module: module.name.clone(), detail };
        let instance = module.pre.instantiate(&mut store).map_err(|e| start_err(format!("{e:#}")))?;
        let allocator = instance
            .get_typed_func::<u32, u32>(&mut store, module.allocator)
            .map_err(|e| start_err(format!("{} has the wrong signature: {e:#}", module.allocator)))?;
        store.data_mut().allocator = Some(allocator);
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        // Start: _initialize (then main(0, 0) if exported), or _start for WASI commands.
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).map_err(|e| start_err(format!("_initialize trapped: {e:#}")))?;
            if let Ok(main) = instance.get_typed_func::<(u32, u32), u32>(&mut store, "main") {
                store.set_epoch_deadline(deadline_ticks);
                main.call(&mut store, (0, 0)).map_err(|e| start_err(format!("main trapped: {e:#}")))?;
            }
        } else if let Ok(start) = instance.get_typed_func::<(), ()>(&mut store, "_start") {
            start.call(&mut store, ()).map_err(|e| start_err(format!("_start trapped: {e:#}")))?;
        }
        let lifecycle = Lifecycle {
            context_create: module.callback(&instance, &mut store, "proxy_on_context_create"),
            vm_start: module.callback(&instance, &mut store, "proxy_on_vm_start"),
            configure: module.callback(&instance, &mut store, "proxy_on_configure"),
            done: module.callback(&instance, &mut store, "proxy_on_done"),
            delete: module.callback(&instance, &mut store, "proxy_on_delete"),
        };
        let http = HttpCallbacks {
            tick: module.callback(&instance, &mut store, "proxy_on_tick"),
            queue_ready: module.callback(&instance, &mut store, "proxy_on_queue_ready"),
            http_call_response: module.callback(&instance, &mut store, "proxy_on_http_call_response"),
            request_headers: module.callback(&instance, &mut store, "proxy_on_request_headers"),
            request_headers_v1: module.callback(&instance, &mut store, "proxy_on_request_headers"),
            request_body: module.callback(&instance, &mut store, "proxy_on_request_body"),
            response_headers: module.callback(&instance, &mut store, "proxy_on_response_headers"),
            response_headers_v1: module.callback(&instance, &mut store, "proxy_on_response_headers"),
            response_body: module.callback(&instance, &mut store, "proxy_on_response_body"),
            request_trailers: module.callback(&instance, &mut store, "proxy_on_request_trailers"),
            response_trailers: module.callback(&instance, &mut store, "proxy_on_response_trailers"),
            log: module.callback(&instance, &mut store, "proxy_on_log"),
        };
        Ok(Vm {
            store,
            lifecycle: Arc::new(lifecycle),
            http: Arc::new(http),
            module,
            deadline_ticks,
            call_number,
            next_context_id: 1,
            failed: false,
            _instance: instance,
        })
    }

    /// The module this VM runs.
    pub fn module(&self) -> &Arc<LoadedModule> {
        &self.module
    }

    /// Whether the VM has trapped and must be replaced.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Linear memory size in bytes.
    pub fn memory_bytes(&mut self) -> usize {
        match self._instance.get_memory(&mut self.store, "memory") {
            Some(m) => m.data_size(&self.store),
            None => 0,
        }
    }

    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        f: &TypedFunc<P, R>,
        callback: &'static str,
        context: u32,
        args: P,
    ) -> Result<R, VmError> {
        if self.failed {
            return Err(VmError::Failed { module: self.module.name.clone() });
        }
        self.call_number.store(self.call_number.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store.data_mut().current_context = context;
        self.store.data_mut().effective_context = None;
        let result = f.call(&mut self.store, args);
        self.store.data_mut().current_context = 0;
        self.store.data_mut().effective_context = None;
        result.map_err(|e| {
            self.failed = true;
            VmError::Trap {
                module: self.module.name.clone(),
                callback,
                detail: format!("{e:#}"),
                cause: e.root_cause().to_string(),
            }
        })
    }

    /// Creates a root context for an attachment and runs `proxy_on_vm_start` and `proxy_on_configure` with
    /// its configuration. Returns the root context id.
    pub fn create_root(
        &mut self,
        tag: Arc<str>,
        plugin: PluginInfo,
        plugin_configuration: Arc<[u8]>,
    ) -> Result<u32, VmError> {
        let id = self.next_context_id;
        self.next_context_id += 1;
        self.store.data_mut().log_tag = tag;
        self.store.data_mut().captured_logs.clear();
        self.store.data_mut().capturing = true;
        let result = self.start_root(id, plugin, plugin_configuration);
        self.store.data_mut().capturing = false;
        result
    }

    fn start_root(&mut self, id: u32, plugin: PluginInfo, plugin_configuration: Arc<[u8]>) -> Result<u32, VmError> {
        self.store.data_mut().roots.push(id);
        self.store.data_mut().plugins.insert(id, plugin);
        if let Some(f) = self.lifecycle.clone().context_create.as_ref() {
            self.call(f, "proxy_on_context_create", id, (id, 0))?;
        }
        if let Some(f) = self.lifecycle.clone().vm_start.as_ref() {
            let size = self.store.data().vm_configuration.len() as u32;
            if self.call(f, "proxy_on_vm_start", id, (id, size))? == 0 {
                let logs = std::mem::take(&mut self.store.data_mut().captured_logs);
                return Err(VmError::VmStartRefused { module: self.module.name.clone(), logs });
            }
        }
        if let Some(f) = self.lifecycle.clone().configure.as_ref() {
            let size = plugin_configuration.len() as u32;
            self.store.data_mut().plugin_configuration = Some(plugin_configuration);
            let accepted = self.call(f, "proxy_on_configure", id, (id, size));
            self.store.data_mut().plugin_configuration = None;
            if accepted? == 0 {
                let logs = std::mem::take(&mut self.store.data_mut().captured_logs);
                return Err(VmError::ConfigureRefused { module: self.module.name.clone(), logs });
            }
        }
        Ok(id)
    }

    /// Sets the log tag (route and filter) for the calls that follow.
    pub fn set_tag(&mut self, tag: &Arc<str>) {
        // Most calls set the tag already there (one attachment's callbacks in a row): no reference count traffic.
        if !Arc::ptr_eq(&self.store.data().log_tag, tag) {
            self.store.data_mut().log_tag = tag.clone();
        }
    }

    /// Creates an HTTP context under `root`.
    pub fn create_http_context(&mut self, root: u32, info: Option<Arc<RequestInfo>>) -> Result<u32, VmError> {
        let id = self.next_context_id;
        self.next_context_id += 1;
        let needs = self.store.data().stream_needs.get(&root).copied().unwrap_or_default();
        self.store.data_mut().streams.insert(id, StreamData { root, info, needs, ..StreamData::default() });
        if let Some(f) = self.lifecycle.clone().context_create.as_ref() {
            if let Err(e) = self.call(f, "proxy_on_context_create", id, (id, root)) {
                self.store.data_mut().streams.remove(&id);
                return Err(e);
            }
        }
        Ok(id)
    }

    fn take_outcome(&mut self, id: u32, action: u32) -> Outcome {
        let stream = self.store.data_mut().streams.get_mut(&id);
        let (local_response, close) = match stream {
            Some(s) => (s.local_response.take(), std::mem::take(&mut s.close)),
            None => (None, false),
        };
        Outcome { action: Action::from_guest(action), local_response, close }
    }

    /// `proxy_on_request_headers` with `headers` (pseudo-headers included); returns the outcome and the
    /// headers as the filter left them.
    pub fn on_request_headers(
        &mut self,
        id: u32,
        headers: Headers,
        end_of_stream: bool,
    ) -> Result<(Outcome, Headers), VmError> {
        self.headers_phase(id, headers, end_of_stream, Phase::RequestHeaders)
    }

    /// `proxy_on_response_headers`, as for the request.
    pub fn on_response_headers(
        &mut self,
        id: u32,
        headers: Headers,
        end_of_stream: bool,
    ) -> Result<(Outcome, Headers), VmError> {
        self.headers_phase(id, headers, end_of_stream, Phase::ResponseHeaders)
    }

    fn headers_phase(
        &mut self,
        id: u32,
        headers: Headers,
        eos: bool,
        phase: Phase,
    ) -> Result<(Outcome, Headers), VmError> {
        let n = headers.len() as u32;
        let Some(stream) = self.store.data_mut().streams.get_mut(&id) else {
            return Ok((Outcome { action: Action::Continue, local_response: None, close: false }, headers));
        };
        stream.phase = phase;
        let request = phase == Phase::RequestHeaders;
        if request {
            stream.request_headers = headers;
        } else {
            stream.response_headers = headers;
        }
        let http = self.http.clone();
        let (v2, v1, name) = if request {
            (http.request_headers.as_ref(), http.request_headers_v1.as_ref(), "proxy_on_request_headers")
        } else {
            (http.response_headers.as_ref(), http.response_headers_v1.as_ref(), "proxy_on_response_headers")
        };
        let action = match (v2, v1) {
            (Some(f), _) => self.call(f, name, id, (id, n, u32::from(eos))),
            (None, Some(f)) => self.call(f, name, id, (id, n)),
            (None, None) => Ok(0),
        };
        // A plugin that reads no map after its phase (`weir.declare_stream_needs`) gives up its view once the
        // callback continues: the proxy then owns the map alone and sends it without a copy.
        let keep = !matches!(action, Ok(0));
        let headers = match self.store.data_mut().streams.get_mut(&id) {
            Some(s) if !keep && !s.needs.headers_after_phase => {
                std::mem::take(if request { &mut s.request_headers } else { &mut s.response_headers })
            }
            // A shared handle: the context keeps the map as it left it, the next filter copies it only to
            // change it.
            Some(s) if request => s.request_headers.clone(),
            Some(s) => s.response_headers.clone(),
            None => Headers::default(),
        };
        let action = action?;
        Ok((self.take_outcome(id, action), headers))
    }

    /// `proxy_on_request_body` / `proxy_on_response_body` with one chunk; returns the outcome and the
    /// chunk as the filter left it. On failure the chunk comes back with the error (a fail-open filter's
    /// stream goes on with it), so the caller never keeps a copy.
    pub fn on_body(
        &mut self,
        id: u32,
        request: bool,
        chunk: Vec<u8>,
        end_of_stream: bool,
    ) -> Result<(Outcome, Vec<u8>), (VmError, Vec<u8>)> {
        let http = self.http.clone();
        let f = if request { http.request_body.as_ref() } else { http.response_body.as_ref() };
        let Some(f) = f else {
            return Ok((Outcome { action: Action::Continue, local_response: None, close: false }, chunk));
        };
        let size = chunk.len() as u32;
        let Some(stream) = self.store.data_mut().streams.get_mut(&id) else {
            return Ok((Outcome { action: Action::Continue, local_response: None, close: false }, chunk));
        };
        stream.phase = if request { Phase::RequestBody } else { Phase::ResponseBody };
        stream.body = chunk;
        stream.final_body = end_of_stream;
        let name = if request { "proxy_on_request_body" } else { "proxy_on_response_body" };
        let action = self.call(f, name, id, (id, size, u32::from(end_of_stream)));
        let body = match self.store.data_mut().streams.get_mut(&id) {
            Some(s) => {
                s.final_body = false;
                std::mem::take(&mut s.body)
            }
            None => Vec::new(),
        };
        match action {
            Ok(action) => Ok((self.take_outcome(id, action), body)),
            Err(e) => Err((e, body)),
        }
    }

    /// `proxy_on_request_trailers` / `proxy_on_response_trailers` with `trailers`; returns the outcome and the
    /// trailers as the filter left them. `held` is the body the filter holds (it paused in its body callback):
    /// the callback can read and change it as the body buffer; [`Vm::take_held_body`] takes it back.
    pub fn on_trailers(
        &mut self,
        id: u32,
        request: bool,
        trailers: Headers,
        held: Option<Vec<u8>>,
    ) -> Result<(Outcome, Headers), VmError> {
        let n = trailers.len() as u32;
        let Some(stream) = self.store.data_mut().streams.get_mut(&id) else {
            return Ok((Outcome { action: Action::Continue, local_response: None, close: false }, trailers));
        };
        stream.phase = if request { Phase::RequestTrailers } else { Phase::ResponseTrailers };
        stream.body_held = held.is_some();
        stream.body = held.unwrap_or_default();
        *Self::trailers_of(stream, request) = Some(trailers);
        let http = self.http.clone();
        let (f, name) = if request {
            (http.request_trailers.as_ref(), "proxy_on_request_trailers")
        } else {
            (http.response_trailers.as_ref(), "proxy_on_response_trailers")
        };
        let action = match f {
            Some(f) => self.call(f, name, id, (id, n)),
            None => Ok(0),
        };
        let trailers = self.stream_trailers(id, request).unwrap_or_default();
        let action = action?;
        Ok((self.take_outcome(id, action), trailers))
    }

    fn trailers_of(stream: &mut StreamData, request: bool) -> &mut Option<Headers> {
        if request {
            &mut stream.request_trailers
        } else {
            &mut stream.response_trailers
        }
    }

    /// The trailers a stream holds now: those its trailers callback (or a callback resuming it) left, or those
    /// its final body callback created; `None` when it has none.
    pub fn stream_trailers(&mut self, id: u32, request: bool) -> Option<Headers> {
        Self::trailers_of(self.store.data_mut().streams.get_mut(&id)?, request).clone()
    }

    /// Keeps `body` as the stream's body buffer while its filter holds it (it paused in its final body
    /// callback): readable and writable from the filter's other callbacks (a callout answer, a tick) until it
    /// resumes; [`Vm::take_held_body`] takes it back.
    pub fn hold_body(&mut self, id: u32, body: Vec<u8>) {
        if let Some(stream) = self.store.data_mut().streams.get_mut(&id) {
            stream.body = body;
            stream.body_held = true;
        }
    }

    /// Marks whether the filter holds its request (or response) headers while its body callbacks run (they stay
    /// writable there).
    pub fn hold_headers(&mut self, id: u32, request: bool, held: bool) {
        if let Some(stream) = self.store.data_mut().streams.get_mut(&id) {
            if request {
                stream.request_headers_held = held;
            } else {
                stream.response_headers_held = held;
            }
        }
    }

    /// The body a filter held through its trailers callback, as it left it (`None` when it held none).
    pub fn take_held_body(&mut self, id: u32) -> Option<Vec<u8>> {
        let stream = self.store.data_mut().streams.get_mut(&id)?;
        if !std::mem::take(&mut stream.body_held) {
            return None;
        }
        Some(std::mem::take(&mut stream.body))
    }

    /// Records the trailers that went on (what `on_log` reads as the response trailers).
    pub fn set_stream_trailers(&mut self, id: u32, request: bool, trailers: Headers) {
        if let Some(stream) = self.store.data_mut().streams.get_mut(&id) {
            *Self::trailers_of(stream, request) = Some(trailers);
        }
    }

    /// Where `proxy_on_queue_ready` notifications for queues this VM registers are posted.
    pub fn set_queue_listener(&mut self, listener: Arc<dyn crate::abi::QueueListener>) {
        self.store.data_mut().queue_listener = Some(listener);
    }

    /// The clusters callouts may target.
    pub fn set_callout_clusters(&mut self, names: Arc<[String]>) {
        self.store.data_mut().callouts.clusters = names;
    }

    /// Callouts the last callbacks started.
    pub fn take_callouts(&mut self) -> Vec<Callout> {
        std::mem::take(&mut self.store.data_mut().callouts.pending)
    }

    /// Delivers a callout's answer (`None`: it failed) with `proxy_on_http_call_response`.
    pub fn deliver_callout(&mut self, callout: &Callout, answer: Option<CalloutResponse>) -> Result<(), VmError> {
        let sizes = match &answer {
            Some(r) => (r.headers.len() as u32, r.body.len() as u32, r.trailers.len() as u32),
            None => (0, 0, 0),
        };
        let state = self.store.data_mut();
        state.callouts.status = match &answer {
            Some(_) => (0, Vec::new()),
            None => (weir_sdk::abi::Status::BrokenConnection as u32, b"reset".to_vec()),
        };
        state.callouts.response = answer;
        let result = self.on_http_call_response(callout.root, callout.token, sizes);
        self.store.data_mut().callouts.response = None;
        result
    }

    /// Tick periods the root contexts asked for.
    pub fn tick_periods(&self) -> Vec<(u32, std::time::Duration)> {
        self.store.data().tick_periods.iter().map(|(r, d)| (*r, *d)).collect()
    }

    /// `proxy_on_tick(root)`.
    pub fn on_tick(&mut self, root: u32) -> Result<(), VmError> {
        match self.http.clone().tick.as_ref() {
            Some(f) => self.call(f, "proxy_on_tick", root, root),
            None => Ok(()),
        }
    }

    /// `proxy_on_queue_ready(root, queue)`.
    pub fn on_queue_ready(&mut self, root: u32, queue: u32) -> Result<(), VmError> {
        match self.http.clone().queue_ready.as_ref() {
            Some(f) => self.call(f, "proxy_on_queue_ready", root, (root, queue)),
            None => Ok(()),
        }
    }

    /// `proxy_on_http_call_response(root, token, headers, body, trailers)`.
    pub fn on_http_call_response(&mut self, root: u32, token: u32, sizes: (u32, u32, u32)) -> Result<(), VmError> {
        match self.http.clone().http_call_response.as_ref() {
            Some(f) => self.call(f, "proxy_on_http_call_response", root, (root, token, sizes.0, sizes.1, sizes.2)),
            None => Ok(()),
        }
    }

    /// Streams that a callback resumed, answered or closed since the last check, with what happened:
    /// `(context, request side?)` for each resume, plus every stream holding a local response or a close.
    pub fn take_wakeups(&mut self) -> Vec<(u32, Wakeup)> {
        let mut out = Vec::new();
        if !std::mem::take(&mut self.store.data_mut().wakeups_pending) {
            return out;
        }
        for (id, s) in self.store.data_mut().streams.iter_mut() {
            if s.local_response.is_some() || s.close {
                out.push((*id, Wakeup::Answered));
                continue;
            }
            if std::mem::take(&mut s.resume_request) {
                out.push((*id, Wakeup::Resume { request: true }));
            }
            if std::mem::take(&mut s.resume_response) {
                out.push((*id, Wakeup::Resume { request: false }));
            }
        }
        out
    }

    /// The headers a paused stream holds now (a resuming callback may have changed them).
    pub fn stream_headers(&self, id: u32, request: bool) -> Option<Headers> {
        let s = self.store.data().streams.get(&id)?;
        Some(if request { s.request_headers.clone() } else { s.response_headers.clone() })
    }

    /// Takes the memo the stream's request headers callback declared (`weir.memoize_response`), if any.
    pub fn take_memo(&mut self, id: u32) -> Option<Box<crate::abi::memo::MemoDraft>> {
        self.store.data_mut().streams.get_mut(&id)?.memo.take()
    }

    /// Takes what a callback asked for on a stream (local response, close) outside its own callback.
    pub fn take_stream_outcome(&mut self, id: u32) -> Outcome {
        self.take_outcome(id, 0)
    }

    /// The end of an HTTP stream: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete` (Envoy's order), skipping
    /// either of the first two the plugin declared it does not need (`weir.declare_stream_needs`).
    pub fn finish_http_context(&mut self, id: u32) -> Result<(), VmError> {
        let needs = match self.store.data_mut().streams.get_mut(&id) {
            Some(s) => {
                s.phase = Phase::Log;
                s.needs
            }
            None => return Ok(()),
        };
        let result = (|| {
            if let Some(f) = self.http.clone().log.as_ref().filter(|_| needs.log) {
                self.call(f, "proxy_on_log", id, id)?;
            }
            if let Some(f) = self.lifecycle.clone().done.as_ref().filter(|_| needs.done) {
                self.call(f, "proxy_on_done", id, id)?;
            }
            self.end_context(id)
        })();
        self.store.data_mut().streams.remove(&id);
        result
    }

    /// `proxy_on_delete`, which frees the context in the guest.
    fn end_context(&mut self, id: u32) -> Result<(), VmError> {
        if let Some(f) = self.lifecycle.clone().delete.as_ref() {
            self.call(f, "proxy_on_delete", id, id)?;
        }
        Ok(())
    }

    /// What the plugin of HTTP context `id` declared its streams use (everything for an unknown context).
    pub fn stream_needs(&self, id: u32) -> weir_sdk::abi::StreamNeeds {
        self.store.data().streams.get(&id).map(|s| s.needs).unwrap_or_default()
    }
}
