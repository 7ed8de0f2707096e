//! Test a compiled filter in Weir's own wasm runtime, inside the test process, with no network.
//!
//! [`FilterHarness`] loads a `.wasm` (or several, as a chain) the way the gateway does: the same
//! [`WasmRuntime`] (engine, linker, hostcalls, limits), the same start-up (a canary
//! VM, then the worker's VM, `proxy_on_vm_start` and `proxy_on_configure`), and the same code paths for a
//! request: the chain runner (request headers in chain order, response headers in reverse, PAUSE and resume,
//! local responses through the response callbacks of the filters before), the body chain (chunk by chunk,
//! held bodies, trailers) and the callout delivery. What the harness replaces is what needs a worker or the
//! network: the upstream (you give the [`Response`]), callouts (you answer each [`PendingCallout`]), the tick
//! timer (you [`advance`](FilterHarness::advance) it or [`tick`](FilterHarness::tick)) and queue
//! notifications (delivered when you enqueue or ask).
//!
//! ```
//! use weir::harness::{FilterHarness, Request, Response};
//!
//! // The `headers` test filter (tests/filters/headers): adds `x-wasm-name`, answers `/local` itself.
//! let harness = FilterHarness::load(weir_tests::filters::HEADERS_WASM, r#"{"name": "t"}"#).unwrap();
//!
//! let mut stream = harness.request(Request::get("/users").header("x-remove", "gone"));
//! let upstream = stream.upstream_request().expect("forwarded");
//! assert_eq!(upstream.header("x-wasm-name"), Some("t"));
//! assert_eq!(upstream.header("x-remove"), None);
//!
//! let client = stream.respond(Response::ok().body("hi")).expect("answered");
//! assert_eq!(client.header("x-wasm-response-name"), Some("t"));
//! assert_eq!(client.body, b"hi");
//!
//! stream.finish(); // on_log, on_done, on_delete
//! assert!(harness.logs().iter().any(|l| l.message == "done t /users"));
//!
//! // A local response: the request never goes upstream.
//! let mut local = harness.request(Request::get("/local"));
//! let answer = local.client_response().expect("answered locally");
//! assert_eq!((answer.status, answer.body_text().as_str()), (201, "local from t\n"));
//! ```
//!
//! Callouts and timers:
//!
//! ```
//! use std::time::Duration;
//! use weir::harness::{FilterHarness, FilterSpec, Request, Response};
//!
//! let harness = FilterHarness::builder()
//!     .filter(FilterSpec::new(weir_tests::filters::CALLOUT_WASM).configuration(r#"{"cluster": "auth"}"#))
//!     .cluster("auth") // callouts may target only declared clusters, as in the gateway
//!     .build()
//!     .unwrap();
//! let mut stream = harness.request(Request::get("/private"));
//! assert!(stream.is_paused());
//! let callout = harness.callouts().pop().expect("one callout");
//! assert_eq!((callout.cluster.as_str(), callout.path.as_str()), ("auth", "/auth"));
//! harness.answer_callout(callout.token, Response::new(403));
//! assert_eq!(stream.client_response().expect("denied").status, 403);
//!
//! harness.advance(Duration::from_millis(100)); // delivers the ticks due meanwhile
//! ```
//!
//! Differences from the gateway, on purpose or not yet:
//! - the gateway's own request headers (`x-request-id`, `x-forwarded-*`, `traceparent`) and the route's
//!   header rules are not added; the request is as you build it;
//! - the request's body and trailers are all known up front: the request phase runs headers, body and
//!   trailers in one go (the gateway sends the headers upstream before the body has gone through);
//! - [`advance`](FilterHarness::advance) moves the harness's tick clock only: the clock the filter reads
//!   (`proxy_get_current_time_nanoseconds`) is the wall clock, and so is the 30 s deadline of a paused stream;
//! - shared data, queues and metrics are the harness's own (one per harness), as they are one per gateway.
//!
//! While the harness calls into a VM it makes its own tracing dispatcher the thread's default (to capture the
//! filter's lines): events the host emits meanwhile do not reach the test's subscriber.

mod capture;
mod message;
mod stream;

pub use capture::{LogLine, MetricValue};
pub use message::{ClientResponse, Origin, Request, Response, UpstreamRequest};
pub use stream::Stream;
/// Log levels ([`LogLine::level`], [`HarnessBuilder::log_level`]).
pub use tracing::Level;

use crate::abi::callout::CalloutResponse;
use crate::abi::stream::first_value;
use crate::abi::HostShared;
use crate::config::{self, FailurePolicy};
use crate::filter::{FilterPlan, FilterSetupError, WorkerFilters};
use crate::telemetry::metrics::Metrics;
use crate::wasm::{Limits, WasmRuntime};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The route every harness request is on (`xds.route_name`; log lines are tagged `harness/<filter>`).
pub const ROUTE: &str = "harness";

/// A module to load: a file (`.wasm` or `.wat`), or its bytes.
#[derive(Debug, Clone)]
pub enum ModuleSource {
    /// A file.
    Path(PathBuf),
    /// The module's bytes.
    Bytes(Arc<[u8]>),
}

impl From<&str> for ModuleSource {
    fn from(path: &str) -> Self {
        ModuleSource::Path(path.into())
    }
}

impl From<String> for ModuleSource {
    fn from(path: String) -> Self {
        ModuleSource::Path(path.into())
    }
}

impl From<&Path> for ModuleSource {
    fn from(path: &Path) -> Self {
        ModuleSource::Path(path.to_path_buf())
    }
}

impl From<PathBuf> for ModuleSource {
    fn from(path: PathBuf) -> Self {
        ModuleSource::Path(path)
    }
}

impl From<Vec<u8>> for ModuleSource {
    fn from(bytes: Vec<u8>) -> Self {
        ModuleSource::Bytes(bytes.into())
    }
}

impl From<&[u8]> for ModuleSource {
    fn from(bytes: &[u8]) -> Self {
        ModuleSource::Bytes(bytes.into())
    }
}

/// One filter of the chain, as a route attachment (`docs/filters.md`) describes it.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    module: ModuleSource,
    name: Option<String>,
    configuration: Vec<u8>,
    vm_configuration: Vec<u8>,
    root_id: String,
    vm_id: String,
    failure_policy: FailurePolicy,
    capabilities: Option<Vec<String>>,
}

impl FilterSpec {
    /// The module, with an empty configuration.
    pub fn new(module: impl Into<ModuleSource>) -> FilterSpec {
        FilterSpec {
            module: module.into(),
            name: None,
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            root_id: String::new(),
            vm_id: String::new(),
            failure_policy: FailurePolicy::FailClosed,
            capabilities: None,
        }
    }

    /// What `proxy_on_configure` reads (JSON text, or any bytes).
    pub fn configuration(mut self, configuration: impl AsRef<[u8]>) -> FilterSpec {
        self.configuration = configuration.as_ref().to_vec();
        self
    }

    /// What `proxy_on_vm_start` reads.
    pub fn vm_configuration(mut self, vm_configuration: impl AsRef<[u8]>) -> FilterSpec {
        self.vm_configuration = vm_configuration.as_ref().to_vec();
        self
    }

    /// The `plugin_root_id` (multi-plugin modules pick their root context with it).
    pub fn root_id(mut self, root_id: &str) -> FilterSpec {
        self.root_id = root_id.to_string();
        self
    }

    /// The `vm_id` (shared data and queues are keyed by it).
    pub fn vm_id(mut self, vm_id: &str) -> FilterSpec {
        self.vm_id = vm_id.to_string();
        self
    }

    /// The attachment's name (`plugin_name`, log tags, the metrics' `filter` label); default: the file stem,
    /// or `filter<N>` for bytes.
    pub fn name(mut self, name: &str) -> FilterSpec {
        self.name = Some(name.to_string());
        self
    }

    /// What a failing filter does to its stream (default fail closed: 503).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> FilterSpec {
        self.failure_policy = policy;
        self
    }

    /// The capability allow-list (`docs/filters.md`, "Capability restriction").
    pub fn capabilities(mut self, names: &[&str]) -> FilterSpec {
        let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        names.sort();
        names.dedup();
        self.capabilities = Some(names);
        self
    }
}

/// Why a harness could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The module does not load, the VM does not start, or the filter refused its configuration (the
    /// error carries the filter's own log lines), exactly as `weir serve` would refuse to start.
    #[error(transparent)]
    Setup(#[from] FilterSetupError),
    /// The runtime could not be created.
    #[error("the wasm runtime: {0}")]
    Runtime(String),
}

/// Options of a [`FilterHarness`]: the chain, the callout clusters, the limits, the log level.
pub struct HarnessBuilder {
    filters: Vec<FilterSpec>,
    clusters: Vec<String>,
    limits: Limits,
    log_level: tracing::Level,
}

impl HarnessBuilder {
    /// Appends a filter to the chain (request callbacks run in this order, response callbacks in reverse).
    pub fn filter(mut self, filter: FilterSpec) -> HarnessBuilder {
        self.filters.push(filter);
        self
    }

    /// Declares a cluster callouts may target (a callout to another one fails, as in the gateway).
    pub fn cluster(mut self, name: &str) -> HarnessBuilder {
        self.clusters.push(name.to_string());
        self
    }

    /// The VM limits (default: the gateway's, [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> HarnessBuilder {
        self.limits = limits;
        self
    }

    /// The most verbose filter log level captured, and what `proxy_get_log_level` answers (default: trace).
    pub fn log_level(mut self, level: tracing::Level) -> HarnessBuilder {
        self.log_level = level;
        self
    }

    /// Compiles the modules, starts and configures every filter (on a canary VM, then on the harness's
    /// VMs), as `weir serve` does.
    pub fn build(self) -> Result<FilterHarness, HarnessError> {
        FilterHarness::build(self)
    }
}

/// A callout a filter started and the test has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCallout {
    /// The token the filter got (answer with it).
    pub token: u32,
    /// The cluster.
    pub cluster: String,
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// `:authority`.
    pub authority: String,
    /// The other headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The timeout the filter asked for.
    pub timeout: Option<Duration>,
}

impl PendingCallout {
    /// The first value of header `name` (pseudo-headers too: `:path`).
    pub fn header(&self, name: &str) -> Option<&str> {
        match name {
            ":method" => Some(&self.method),
            ":path" => Some(&self.path),
            ":authority" => Some(&self.authority),
            _ => self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()),
        }
    }
}

/// What the harness shares with its streams.
pub(crate) struct Inner {
    pub(crate) filters: Arc<WorkerFilters>,
    /// Filter names in chain order.
    pub(crate) names: Vec<String>,
    tokio: tokio::runtime::Runtime,
    dispatch: tracing::Dispatch,
    lines: capture::Lines,
    callouts: Arc<Mutex<Vec<crate::filter::CalloutTicket>>>,
    clock: RefCell<(crate::filter::TickClock, tokio::time::Instant)>,
    runtime: Arc<WasmRuntime>,
    metrics: Arc<Metrics>,
    vm_id: String,
}

impl Inner {
    /// Runs `f` the way the gateway's worker would call into its VMs: inside a tokio runtime (for the pause
    /// deadline's timer), with the harness's log capture.
    pub(crate) fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _runtime = self.tokio.enter();
        tracing::dispatcher::with_default(&self.dispatch, f)
    }
}

/// A filter (or a chain of filters) loaded into Weir's wasm runtime, driven in-process. See the
/// [module documentation](self).
pub struct FilterHarness {
    inner: Rc<Inner>,
}

impl FilterHarness {
    /// Loads one filter with its configuration (JSON text, or any bytes; `""` for none).
    pub fn load(
        module: impl Into<ModuleSource>,
        configuration: impl AsRef<[u8]>,
    ) -> Result<FilterHarness, HarnessError> {
        FilterHarness::builder().filter(FilterSpec::new(module).configuration(configuration)).build()
    }

    /// Options: a chain of filters, VM configuration, root id, failure policy, callout clusters, limits.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder {
            filters: Vec::new(),
            clusters: Vec::new(),
            limits: Limits::default(),
            log_level: tracing::Level::TRACE,
        }
    }

    fn build(options: HarnessBuilder) -> Result<FilterHarness, HarnessError> {
        let metrics = Arc::new(Metrics::new());
        let runtime = WasmRuntime::new(options.limits, HostShared::new(metrics.clone()))
            .map_err(|e| HarnessError::Runtime(format!("{e:#}")))?;
        let mut bytes_modules: Vec<(PathBuf, Arc<[u8]>)> = Vec::new();
        let mut attachments = Vec::new();
        let mut names = Vec::new();
        for (i, spec) in options.filters.iter().enumerate() {
            let (module, default_name) = match &spec.module {
                ModuleSource::Path(path) => {
                    let stem =
                        path.file_stem().map_or_else(|| format!("filter{i}"), |s| s.to_string_lossy().into_owned());
                    (config::ModuleRef::File(path.clone()), stem)
                }
                ModuleSource::Bytes(bytes) => {
                    let path = PathBuf::from(format!("<bytes of filter {i}>"));
                    bytes_modules.push((path.clone(), bytes.clone()));
                    (config::ModuleRef::File(path), format!("filter{i}"))
                }
            };
            let name = spec.name.clone().unwrap_or(default_name);
            names.push(name.clone());
            attachments.push(config::FilterAttachment {
                name,
                module,
                root_id: spec.root_id.clone(),
                vm_id: spec.vm_id.clone(),
                configuration: spec.configuration.clone(),
                vm_configuration: spec.vm_configuration.clone(),
                environment: Vec::new(),
                failure_policy: spec.failure_policy,
                allow_on_headers_stop_iteration: false,
                capabilities: spec.capabilities.clone(),
            });
        }
        let route = config::Route {
            name: ROUTE.to_string(),
            matcher: config::RouteMatch { hosts: Vec::new(), path: None, methods: Vec::new(), headers: Vec::new() },
            action: config::RouteAction::Cluster(ROUTE.to_string()),
            prefix_rewrite: None,
            host_rewrite: None,
            request_headers_to_add: Vec::new(),
            request_headers_to_remove: Vec::new(),
            timeout: None,
            filters: attachments,
            retry_policy: None,
            fallback: None,
        };
        let clusters: Vec<config::Cluster> = options
            .clusters
            .iter()
            .map(|name| config::Cluster {
                name: name.clone(),
                endpoints: Vec::new(),
                lb_policy: config::LbPolicy::RoundRobin,
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(15),
                idle_timeout: Duration::from_secs(60),
                max_idle_per_endpoint: 0,
                http2: false,
                tls: None,
                health_check: None,
                outlier_detection: None,
                circuit_breakers: config::CircuitBreakers::default(),
            })
            .collect();
        let lines = capture::Lines::default();
        let dispatch = capture::dispatcher(options.log_level, lines.clone());
        let read = |module: &config::ModuleRef| match module {
            config::ModuleRef::File(path) => match bytes_modules.iter().find(|(p, _)| p == path) {
                Some((_, bytes)) => Ok(bytes.to_vec()),
                None => std::fs::read(path),
            },
            config::ModuleRef::Registry { reference, .. } => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{reference}: the harness has no registry"),
            )),
        };
        let built = tracing::dispatcher::with_default(&dispatch, || -> Result<WorkerFilters, FilterSetupError> {
            let plan = FilterPlan::build_reading(runtime.clone(), std::slice::from_ref(&route), &clusters, &read)?;
            // The canary's lines repeat what the worker's VMs log below.
            lines.lock().unwrap_or_else(|e| e.into_inner()).clear();
            WorkerFilters::new(Arc::new(plan), 0)
        });
        let filters = Arc::new(built?);
        let callouts: Arc<Mutex<Vec<crate::filter::CalloutTicket>>> = Arc::default();
        let sink = callouts.clone();
        filters.capture_callouts(move |ticket| sink.lock().unwrap_or_else(|e| e.into_inner()).push(ticket));
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| HarnessError::Runtime(e.to_string()))?;
        let clock = {
            let _runtime = tokio.enter();
            (filters.tick_clock(), tokio::time::Instant::now())
        };
        let inner = Inner {
            filters,
            names,
            tokio,
            dispatch,
            lines,
            callouts,
            clock: RefCell::new(clock),
            runtime,
            metrics,
            vm_id: options.filters.first().map(|f| f.vm_id.clone()).unwrap_or_default(),
        };
        let harness = FilterHarness { inner: Rc::new(inner) };
        // Arms the tick timers the roots set while they were configured, as the worker's task does at start.
        harness.advance(Duration::ZERO);
        Ok(harness)
    }

    /// Starts a request: runs its request phase (headers, body chunks, trailers) through the chain, as far
    /// as the filters let it go now. See [`Stream`].
    pub fn request(&self, request: Request) -> Stream {
        Stream::start(self.inner.clone(), request)
    }

    /// The callouts the filters started and the test has not answered, oldest first.
    pub fn callouts(&self) -> Vec<PendingCallout> {
        let tickets = self.inner.callouts.lock().unwrap_or_else(|e| e.into_inner());
        tickets
            .iter()
            .map(|t| {
                let c = &t.callout;
                let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
                let pseudo = |name: &[u8]| first_value(&c.headers, name).map(text).unwrap_or_default();
                PendingCallout {
                    token: c.token,
                    cluster: c.cluster.clone(),
                    method: pseudo(b":method"),
                    path: pseudo(b":path"),
                    authority: pseudo(b":authority"),
                    headers: c
                        .headers
                        .iter()
                        .filter(|(k, _)| !k.starts_with(b":"))
                        .map(|(k, v)| (text(k), text(v)))
                        .collect(),
                    body: c.body.clone(),
                    timeout: c.timeout,
                }
            })
            .collect()
    }

    fn take_callout(&self, token: u32) -> crate::filter::CalloutTicket {
        let mut tickets = self.inner.callouts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = tickets.iter().position(|t| t.callout.token == token) else {
            let pending: Vec<u32> = tickets.iter().map(|t| t.callout.token).collect();
            panic!("no pending callout with token {token} (pending: {pending:?})");
        };
        tickets.remove(i)
    }

    /// Answers the callout with `token` (`proxy_on_http_call_response`, as an answer from the cluster would
    /// come); the streams its callback resumes or answers go on when you next look at them. Panics when no
    /// callout with that token is pending.
    pub fn answer_callout(&self, token: u32, response: Response) {
        let ticket = self.take_callout(token);
        let answer = CalloutResponse {
            headers: response.head(),
            trailers: message::pairs_headers(&response.trailers),
            body: response.body.concat(),
        };
        self.inner.enter(|| ticket.answer(Some(answer)));
        self.deliver_queues();
    }

    /// Fails the callout with `token` (connection reset: the filter gets an answer with no headers, and
    /// `proxy_get_status` says `BROKEN_CONNECTION`). Panics when no callout with that token is pending.
    pub fn fail_callout(&self, token: u32) {
        let ticket = self.take_callout(token);
        self.inner.enter(|| ticket.answer(None));
        self.deliver_queues();
    }

    /// Delivers `proxy_on_tick` to every root context that set a tick period, now, whatever the schedule.
    pub fn tick(&self) {
        let mut clock = self.inner.clock.borrow_mut();
        let (schedule, now) = &mut *clock;
        let now = *now;
        self.inner.enter(|| self.inner.filters.deliver_ticks(schedule, now, true));
        drop(clock);
        self.deliver_queues();
    }

    /// Moves the tick clock forward by `by`, delivering every tick that falls due meanwhile, in order (a
    /// 10 ms period over 100 ms ticks 10 times), and the queue notifications pending.
    pub fn advance(&self, by: Duration) {
        let mut clock = self.inner.clock.borrow_mut();
        let (schedule, now) = &mut *clock;
        let target = *now + by;
        self.inner.enter(|| loop {
            let wait = self.inner.filters.deliver_ticks(schedule, *now, false).max(Duration::from_millis(1));
            match now.checked_add(wait) {
                Some(next) if next <= target => *now = next,
                _ => {
                    *now = target;
                    break;
                }
            }
        });
        drop(clock);
        self.deliver_queues();
    }

    /// Delivers `proxy_on_queue_ready` for items enqueued since the last delivery (the harness does this
    /// after [`enqueue`](Self::enqueue) and [`advance`](Self::advance)); returns how many.
    pub fn deliver_queues(&self) -> usize {
        self.inner.enter(|| self.inner.filters.deliver_queue_notifications())
    }

    fn host(&self) -> &HostShared {
        self.inner.runtime.host()
    }

    /// Shared data `key` of the first filter's `vm_id` (value and CAS), as the filter would read it.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.host().data.get(&self.inner.vm_id, key.as_bytes()).map(|(value, cas)| (value.to_vec(), cas))
    }

    /// Sets shared data `key` of the first filter's `vm_id` (no CAS check).
    pub fn set_shared_data(&self, key: &str, value: impl AsRef<[u8]>) {
        let _ = self.host().data.set(&self.inner.vm_id, key.as_bytes(), value.as_ref(), 0);
    }

    /// Enqueues `item` on queue `name` of the first filter's `vm_id` and delivers `proxy_on_queue_ready`;
    /// false when no filter registered that queue.
    pub fn enqueue(&self, name: &str, item: impl AsRef<[u8]>) -> bool {
        let Some(id) = self.host().queues.resolve(&self.inner.vm_id, name.as_bytes()) else { return false };
        let queued = self.host().queues.enqueue(id, item.as_ref().to_vec()).is_ok();
        self.deliver_queues();
        queued
    }

    /// Takes the oldest item of queue `name` of the first filter's `vm_id`.
    pub fn dequeue(&self, name: &str) -> Option<Vec<u8>> {
        let id = self.host().queues.resolve(&self.inner.vm_id, name.as_bytes())?;
        self.host().queues.dequeue(id).ok().flatten()
    }

    /// The value of the metric a filter defined as `name` (`None`: no filter defined it).
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        capture::metric(&self.inner.metrics.render(), name)
    }

    /// Every line the filters logged so far (at the harness's level or more severe), oldest first.
    pub fn logs(&self) -> Vec<LogLine> {
        self.inner.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The lines logged so far, forgotten by the harness.
    pub fn take_logs(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.inner.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether a filter logged a line containing `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.inner.lines.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|l| l.message.contains(text))
    }

    /// The filter names of the chain, in order (log tags are `harness/<name>`).
    pub fn filter_names(&self) -> &[String] {
        &self.inner.names
    }

    /// The wasm runtime (engine, compiled modules, process-wide shared state) the harness runs on.
    pub fn runtime(&self) -> &Arc<WasmRuntime> {
        &self.inner.runtime
    }
}
