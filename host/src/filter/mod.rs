//! Filter chains: the proxy-wasm filters attached to routes, as one worker runs them.
//!
//! Per worker there is one VM per (module, `vm_id`, VM configuration, capability allow-list); each route
//! attachment is a root context in it. A VM that traps is replaced (with backoff) the next time a request needs it; its root
//! contexts are created and configured again.

mod body;
mod callout;
mod chain;
mod events;
mod manual;
pub mod memo;

pub use body::{BodyChain, BodyVerdict, MAX_BUFFERED_BODY};
pub(crate) use callout::CalloutTicket;
pub use chain::{
    run_request_headers, run_request_headers_from, run_response_headers, run_response_headers_streaming, ChainStreams,
    PausedHeaders, RequestStart, RequestVerdict, ResponseStart, ResponseVerdict, PAUSE_DEADLINE,
};
pub(crate) use manual::TickClock;

use crate::abi::PluginInfo;
use crate::config::{self, FailurePolicy};
use crate::wasm::{LoadError, LoadedModule, Vm, VmError, Wakeup, WasmRuntime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Why filters could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum FilterSetupError {
    /// The module file could not be read.
    #[error("route {route}: filter {filter}: cannot read {file}: {source}")]
    Read {
        /// Route name.
        route: String,
        /// Filter name.
        filter: String,
        /// The module file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The module does not load.
    #[error("route {route}: filter {filter}: {source}")]
    Load {
        /// Route name.
        route: String,
        /// Filter name.
        filter: String,
        /// Why.
        source: Box<LoadError>,
    },
    /// The VM does not start or the filter refuses its configuration.
    #[error("route {route}: filter {filter}: {source}")]
    Start {
        /// Route name.
        route: String,
        /// Filter name.
        filter: String,
        /// Why.
        source: Box<VmError>,
    },
}

/// Everything needed to start (and restart) one VM with its root contexts.
struct VmPlan {
    module: Arc<LoadedModule>,
    vm_configuration: Arc<[u8]>,
    environment: Arc<[(String, String)]>,
    vm_id: String,
    /// (log tag, plugin configuration) per root context, in creation order.
    roots: Vec<(Arc<str>, Arc<[u8]>)>,
    /// What each root context serves, same order.
    plugins: Vec<PluginInfo>,
}

/// The modules and attachments of a configuration, checked once (on a throwaway "canary" VM, as Envoy
/// does) and shared by every worker.
pub struct FilterPlan {
    runtime: Arc<WasmRuntime>,
    /// Cluster names callouts may target.
    clusters: Arc<[String]>,
    vms: Vec<VmPlan>,
    /// Per route (by index): the attachments in chain order.
    routes: Vec<Vec<AttachmentPlan>>,
}

#[derive(Clone)]
struct AttachmentPlan {
    vm: usize,
    /// Index into the VM plan's roots.
    root: usize,
    name: Arc<str>,
    failure_policy: FailurePolicy,
    allow_on_headers_stop_iteration: bool,
}

impl FilterPlan {
    /// Loads every module once and starts and configures every attachment on a canary VM, so a module
    /// that does not load or a configuration the filter refuses stops the start with the filter's words.
    pub fn build(
        runtime: Arc<WasmRuntime>,
        routes: &[config::Route],
        clusters: &[config::Cluster],
    ) -> Result<FilterPlan, FilterSetupError> {
        Self::build_reading(runtime, routes, clusters, &|module| match module {
            config::ModuleRef::File(path) => std::fs::read(path),
            config::ModuleRef::Registry { reference, .. } => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{reference} is a registry module; this gateway reads files only"),
            )),
        })
    }

    /// [`build`](Self::build) with the modules read by `read` (the registry's blobs; `weir::harness` loads
    /// modules from bytes).
    pub(crate) fn build_reading(
        runtime: Arc<WasmRuntime>,
        routes: &[config::Route],
        clusters: &[config::Cluster],
        read: &dyn Fn(&config::ModuleRef) -> std::io::Result<Vec<u8>>,
    ) -> Result<FilterPlan, FilterSetupError> {
        let mut vms: Vec<VmPlan> = Vec::new();
        let mut plan_routes = Vec::new();
        for route in routes {
            let mut chain = Vec::new();
            for f in &route.filters {
                let bytes = read(&f.module).map_err(|source| FilterSetupError::Read {
                    route: route.name.clone(),
                    filter: f.name.clone(),
                    file: f.module.to_string(),
                    source,
                })?;
                let allowed = f.capabilities.as_ref().map(|c| Arc::new(c.iter().cloned().collect()));
                // A registry module is named after its filter (`jwt-auth`), whichever attachment loads it first;
                // a file module after the first attachment that loads it (by default the file stem).
                let module_name = f.module.filter_name().unwrap_or(&f.name);
                let module = runtime.load_restricted(module_name, &bytes, allowed.as_ref()).map_err(|source| {
                    FilterSetupError::Load {
                        route: route.name.clone(),
                        filter: f.name.clone(),
                        source: Box::new(source),
                    }
                })?;
                let vm_configuration: Arc<[u8]> = Arc::from(f.vm_configuration.as_slice());
                let environment: Arc<[(String, String)]> = Arc::from(f.environment.as_slice());
                // One VM per (module, vm_id, VM configuration, capabilities): attachments whose allow-lists
                // differ never share a VM (as in Envoy, where the restriction is part of the VM's config).
                let vm = match vms.iter().position(|v| {
                    v.module.digest == module.digest
                        && v.vm_id == f.vm_id
                        && *v.vm_configuration == *vm_configuration
                        && *v.environment == *environment
                        && v.module.capabilities == module.capabilities
                }) {
                    Some(i) => i,
                    None => {
                        vms.push(VmPlan {
                            module,
                            vm_configuration,
                            environment,
                            vm_id: f.vm_id.clone(),
                            roots: Vec::new(),
                            plugins: Vec::new(),
                        });
                        vms.len() - 1
                    }
                };
                let tag: Arc<str> = format!("{}/{}", route.name, f.name).into();
                vms[vm].roots.push((tag, Arc::from(f.configuration.as_slice())));
                vms[vm].plugins.push(PluginInfo {
                    name: f.name.as_str().into(),
                    root_id: f.root_id.as_str().into(),
                    vm_id: f.vm_id.as_str().into(),
                });
                chain.push(AttachmentPlan {
                    vm,
                    root: vms[vm].roots.len() - 1,
                    name: f.name.as_str().into(),
                    failure_policy: f.failure_policy,
                    allow_on_headers_stop_iteration: f.allow_on_headers_stop_iteration,
                });
            }
            plan_routes.push(chain);
        }
        let clusters: Arc<[String]> = clusters.iter().map(|c| c.name.clone()).collect();
        let plan = FilterPlan { runtime, clusters, vms, routes: plan_routes };
        // Canary: every VM started and every root configured once, here, before any worker runs.
        for (i, _) in plan.vms.iter().enumerate() {
            plan.start_vm(i, usize::MAX, None).map_err(|(root, source)| {
                let (route, filter) = plan.describe(i, root);
                FilterSetupError::Start { route, filter, source: Box::new(source) }
            })?;
        }
        Ok(plan)
    }

    fn describe(&self, vm: usize, root: usize) -> (String, String) {
        let tag = self.vms[vm].roots.get(root).map(|(t, _)| t.to_string()).unwrap_or_default();
        let (route, filter) = tag.split_once('/').unwrap_or((&tag, ""));
        (route.to_string(), filter.to_string())
    }

    /// Starts VM `i` and creates its root contexts; on failure, which root failed.
    #[allow(clippy::result_large_err)] // start-up only
    fn start_vm(
        &self,
        i: usize,
        worker: usize,
        listener: Option<Arc<dyn crate::abi::QueueListener>>,
    ) -> Result<(Vm, Vec<u32>), (usize, VmError)> {
        let plan = &self.vms[i];
        let vm_id: Arc<str> = plan.vm_id.as_str().into();
        let mut vm = Vm::start_with_environment(
            &self.runtime,
            plan.module.clone(),
            worker,
            vm_id,
            plan.vm_configuration.clone(),
            plan.environment.clone(),
        )
        .map_err(|e| (0, e))?;
        vm.set_callout_clusters(self.clusters.clone());
        // Before the roots start: on_configure is where filters register their queues.
        if let Some(listener) = listener {
            vm.set_queue_listener(listener);
        }
        let mut ids = Vec::new();
        for (r, (tag, config)) in plan.roots.iter().enumerate() {
            ids.push(vm.create_root(tag.clone(), plan.plugins[r].clone(), config.clone()).map_err(|e| (r, e))?);
        }
        Ok((vm, ids))
    }

    /// Whether any route has filters.
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
    }
}

/// A worker's VM with what is needed to replace it.
pub struct VmSlot {
    index: usize,
    worker: usize,
    vm: Option<Vm>,
    roots: Vec<u32>,
    /// Bumped each time the VM is replaced: contexts of an older generation are gone.
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
    /// Paused streams waiting for a resume (or an answer): (context, request side?) → signal.
    waiters: HashMap<(u32, bool), oneshot::Sender<()>>,
    /// Runs the callouts this VM's callbacks start.
    runner: Arc<callout::CalloutRunner>,
    /// Queue notifications for this VM, and the receiving end the worker's background task takes.
    mailbox: Arc<QueueMailbox>,
    inbox: Option<tokio::sync::mpsc::UnboundedReceiver<u32>>,
    /// This slot, for callout answers to find it.
    me: std::sync::Weak<Mutex<VmSlot>>,
    /// Memoized local responses, by root (attachment) index; emptied when the VM is replaced.
    memos: Vec<memo::MemoTable>,
}

impl VmSlot {
    /// Wakes the paused streams that the last guest call resumed or answered. Called after every call
    /// into the VM, so a resume asked for from any callback (a tick, a callout answer, another stream)
    /// takes effect once that callback has returned, never re-entrantly.
    pub(crate) fn wake(&mut self) {
        let Some(vm) = self.vm.as_mut() else { return };
        let callouts = vm.take_callouts();
        if !callouts.is_empty() {
            callout::spawn(&self.runner, &self.me, self.generation, callouts);
        }
        if self.waiters.is_empty() {
            let _ = vm.take_wakeups();
            return;
        }
        for (id, wakeup) in vm.take_wakeups() {
            let keys: Vec<(u32, bool)> = match wakeup {
                Wakeup::Resume { request } => vec![(id, request)],
                Wakeup::Answered => vec![(id, true), (id, false)],
            };
            for key in keys {
                if let Some(tx) = self.waiters.remove(&key) {
                    let _ = tx.send(());
                }
            }
        }
    }

    /// The running VM, replacing a failed one when the backoff allows.
    fn ready(&mut self, plan: &FilterPlan) -> Option<&mut Vm> {
        let healthy = self.vm.as_ref().is_some_and(|v| !v.failed());
        if !healthy {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return None;
            }
            match plan.start_vm(self.index, self.worker, Some(self.mailbox.clone())) {
                Ok((vm, roots)) => {
                    tracing::info!(module = %plan.vms[self.index].module.name, worker = self.worker, restarts = self.failures, "filter VM replaced");
                    self.vm = Some(vm);
                    self.roots = roots;
                    self.generation += 1;
                    self.memos.clear();
                    self.retry_at = None;
                }
                Err((_, e)) => {
                    self.failures += 1;
                    let backoff = Duration::from_millis(100u64 << self.failures.min(6));
                    self.retry_at = Some(Instant::now() + backoff);
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "filter VM could not be replaced");
                    return None;
                }
            }
        }
        self.vm.as_mut()
    }

    fn note_failure(&mut self) {
        self.failures += 1;
        self.retry_at = Some(Instant::now() + Duration::from_millis(10));
    }
}

/// Posts queue notifications to the worker that owns a VM (enqueue may run on any worker).
struct QueueMailbox(tokio::sync::mpsc::UnboundedSender<u32>);

impl crate::abi::QueueListener for QueueMailbox {
    fn queue_ready(&self, queue_id: u32) {
        let _ = self.0.send(queue_id);
    }
}

/// One worker's filters.
pub struct WorkerFilters {
    plan: Arc<FilterPlan>,
    slots: Vec<Arc<Mutex<VmSlot>>>,
    runner: Arc<callout::CalloutRunner>,
}

/// An attachment as a worker runs it.
pub struct Attachment {
    slot: Arc<Mutex<VmSlot>>,
    root: usize,
    /// Filter name.
    pub name: Arc<str>,
    /// Failure policy.
    pub failure_policy: FailurePolicy,
    /// A headers PAUSE lets the body callbacks go on ([`crate::config::FilterAttachment`]).
    pub allow_on_headers_stop_iteration: bool,
    tag: Arc<str>,
    /// Its filter memoized an answer on this worker at least once: only then is an early answer looked for.
    memoized: std::sync::atomic::AtomicBool,
}

impl Attachment {
    /// Whether its filter memoized an answer on this worker at least once (a cheap test before
    /// [`Attachment::early_answer`]).
    pub fn has_memoized(&self) -> bool {
        self.memoized.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A memoized answer of this attachment, the first of its chain, for a request without a body that has not
    /// been through the gateway's request policy ([`memo::MemoTable::answer_early`]); none while its VM is down.
    pub fn early_answer(&self, request: &crate::abi::memo::ClientRequest<'_>, route: &str) -> Option<memo::MemoAnswer> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.vm.as_ref().is_none_or(Vm::failed) {
            return None;
        }
        slot.memos.get_mut(self.root)?.answer_early(request, route)
    }
}

impl WorkerFilters {
    /// Starts this worker's VMs.
    pub fn new(plan: Arc<FilterPlan>, worker: usize) -> Result<WorkerFilters, FilterSetupError> {
        let mut slots = Vec::new();
        let runner = Arc::new(callout::CalloutRunner::default());
        for i in 0..plan.vms.len() {
            let (tx, inbox) = tokio::sync::mpsc::unbounded_channel();
            let mailbox = Arc::new(QueueMailbox(tx));
            let (vm, roots) = plan.start_vm(i, worker, Some(mailbox.clone())).map_err(|(root, source)| {
                let (route, filter) = plan.describe(i, root);
                FilterSetupError::Start { route, filter, source: Box::new(source) }
            })?;
            let runner = runner.clone();
            slots.push(Arc::new_cyclic(|me| {
                Mutex::new(VmSlot {
                    index: i,
                    worker,
                    vm: Some(vm),
                    roots,
                    generation: 0,
                    failures: 0,
                    retry_at: None,
                    waiters: HashMap::new(),
                    runner,
                    mailbox,
                    inbox: Some(inbox),
                    me: me.clone(),
                    memos: Vec::new(),
                })
            }));
        }
        Ok(WorkerFilters { plan, slots, runner })
    }

    /// The chain of route `index`.
    pub fn chain(&self, index: usize) -> Vec<Attachment> {
        self.plan.routes.get(index).map_or_else(Vec::new, |chain| {
            chain
                .iter()
                .map(|a| Attachment {
                    slot: self.slots[a.vm].clone(),
                    root: a.root,
                    name: a.name.clone(),
                    failure_policy: a.failure_policy,
                    allow_on_headers_stop_iteration: a.allow_on_headers_stop_iteration,
                    tag: self.plan.vms[a.vm].roots[a.root].0.clone(),
                    memoized: std::sync::atomic::AtomicBool::new(false),
                })
                .collect()
        })
    }

    fn plan(&self) -> &FilterPlan {
        &self.plan
    }

    /// Gives callouts the worker's clusters.
    pub fn set_clusters(&self, clusters: Arc<Vec<Arc<crate::upstream::Cluster>>>) {
        let _ = self.runner.clusters.set(clusters);
    }

    /// Starts this worker's background work (ticks); must run inside the worker's runtime.
    pub fn start_background(&self) {
        for slot in &self.slots {
            let inbox = slot.lock().unwrap_or_else(|e| e.into_inner()).inbox.take();
            tokio::spawn(events::ticks(Arc::downgrade(slot), self.plan.clone(), inbox));
        }
    }
}
