//! What a VM's store holds: the guest's allocator, its limits, who it is (for logs), and the data the
//! current callback may see through hostcalls.

use super::shared::{HostShared, QueueListener};
use super::stream::StreamData;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A map keyed by context id. Ids are small integers the VM hands out itself, so hashing them with
/// SipHash (several lookups per hostcall) buys nothing: the id is its own hash.
pub type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// The identity hasher behind [`IdMap`].
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u32(&mut self, id: u32) {
        // Spread the id over the high bits too: hashbrown picks buckets from the low bits and groups
        // entries by the top seven.
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
use wasmtime::{StoreLimits, TypedFunc};

/// Who a VM is, for log lines and metrics.
#[derive(Debug, Clone)]
pub struct VmIdentity {
    /// The module's name (file stem or registry name).
    pub module: Arc<str>,
    /// The module's sha256 digest, hex.
    pub digest: Arc<str>,
    /// The worker the VM runs on.
    pub worker: usize,
}

/// What a root context serves (the `plugin_*` properties).
#[derive(Debug, Clone, Default)]
pub struct PluginInfo {
    /// The attachment's name.
    pub name: Arc<str>,
    /// Its `root_id`.
    pub root_id: Arc<str>,
    /// Its `vm_id`.
    pub vm_id: Arc<str>,
}

/// Per-store state.
pub struct VmState {
    /// Who this VM is.
    pub identity: VmIdentity,
    /// Process-wide shared data, queues and metrics.
    pub host: Arc<HostShared>,
    /// The VM's `vm_id` (shared data and queues are keyed by it).
    pub vm_id: Arc<str>,
    /// What each root context serves.
    pub plugins: IdMap<PluginInfo>,
    /// `proxy_on_memory_allocate` (or `malloc`), resolved once after instantiation.
    pub allocator: Option<TypedFunc<u32, u32>>,
    /// The exported memory, resolved once after instantiation.
    pub memory: Option<wasmtime::Memory>,
    /// Memory, table and instance caps.
    pub limits: StoreLimits,
    /// The context whose callback is running (0: the VM itself).
    pub current_context: u32,
    /// The VM configuration (buffer 6), the same bytes every time.
    pub vm_configuration: Arc<[u8]>,
    /// The plugin configuration (buffer 7), present only during `proxy_on_configure`.
    pub plugin_configuration: Option<Arc<[u8]>>,
    /// The name of the attachment whose callback runs (route and filter), for log lines.
    pub log_tag: Arc<str>,
    /// Log lines the guest wrote during the current lifecycle call, kept so a refused configuration can be
    /// reported with the filter's own words.
    pub captured_logs: Vec<String>,
    /// Whether log lines are being captured (only while a root context starts).
    pub capturing: bool,
    /// A hostcall asked to resume, answer or close some stream since the last check.
    pub wakeups_pending: bool,
    /// `proxy_set_effective_context` for the rest of the current callback.
    pub effective_context: Option<u32>,
    /// HTTP contexts and what they may see.
    pub streams: IdMap<StreamData>,
    /// Root contexts alive in this VM.
    pub roots: Vec<u32>,
    /// Tick periods set with `proxy_set_tick_period_milliseconds`, by root context (absent: no ticks).
    pub tick_periods: IdMap<std::time::Duration>,
    /// What each root context's HTTP contexts use (`weir.declare_stream_needs`; absent: everything).
    pub stream_needs: IdMap<weir_sdk::abi::StreamNeeds>,
    /// HTTP callouts started, being answered, and their status.
    pub callouts: super::callout::Callouts,
    /// Who to wake when an item arrives on a queue this VM registered (`proxy_register_shared_queue`); the
    /// worker that runs the VM sets it. `None`: the VM's registrations wake nobody.
    pub queue_listener: Option<Arc<dyn QueueListener>>,
    /// What WASI `environ_get` shows: the attachment's `environment_variables`, `KEY=VALUE` pairs.
    pub environment: Arc<[(String, String)]>,
}

impl VmState {
    /// The context hostcalls act on: the effective one when set and still alive, else the current one.
    pub fn acting_context(&self) -> u32 {
        match self.effective_context {
            Some(id) if self.streams.contains_key(&id) => id,
            _ => self.current_context,
        }
    }

    /// The root context of the acting context (itself when it is a root).
    pub fn acting_root(&self) -> Option<u32> {
        let id = self.acting_context();
        if self.roots.contains(&id) {
            return Some(id);
        }
        self.streams.get(&id).map(|s| s.root)
    }

    /// The stream hostcalls act on, if the acting context is an HTTP context.
    pub fn acting_stream(&mut self) -> Option<&mut StreamData> {
        let id = self.acting_context();
        self.streams.get_mut(&id)
    }
}

impl VmState {
    /// Fresh state for a VM about to be instantiated.
    pub fn new(
        identity: VmIdentity,
        host: Arc<HostShared>,
        vm_id: Arc<str>,
        limits: StoreLimits,
        vm_configuration: Arc<[u8]>,
    ) -> VmState {
        let log_tag: Arc<str> = identity.module.clone();
        VmState {
            identity,
            host,
            vm_id,
            plugins: IdMap::default(),
            allocator: None,
            memory: None,
            limits,
            current_context: 0,
            vm_configuration,
            plugin_configuration: None,
            log_tag,
            captured_logs: Vec::new(),
            capturing: false,
            wakeups_pending: false,
            effective_context: None,
            streams: IdMap::default(),
            roots: Vec::new(),
            tick_periods: IdMap::default(),
            stream_needs: IdMap::default(),
            callouts: super::callout::Callouts::default(),
            queue_listener: None,
            environment: Arc::from(Vec::new()),
        }
    }
}
