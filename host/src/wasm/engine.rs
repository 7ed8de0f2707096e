//! The engine (Cranelift, epoch interruption), the linker with every hostcall, the compiled-module cache
//! keyed by sha256 digest, and the epoch ticker that bounds every callback.

use super::module::{LoadError, LoadedModule};
use crate::abi::hostcalls::capabilities::Allowed;
use crate::abi::{self, HostShared, VmState};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::{Config, Engine, Linker};

/// How often the epoch advances. A callback's deadline is a whole number of these.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Set to `1`, compiled guest functions are listed in `/tmp/perf-<pid>.map`, so `perf` (or callgrind through the
/// map) names the filter's functions instead of bare addresses.
pub const PERF_MAP_ENV: &str = "WEIR_WASM_PERF_MAP";

/// Limits every VM runs under; on by default.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bound on one callback (guest code between two returns to the host), in CPU time checked against the
    /// thread's clock, with five times it in wall time as the outer bound (see `deadline.rs`).
    pub callback_deadline: Duration,
    /// The CPU clock the deadline reads: the calling thread's, unless a test gives another.
    pub cpu_clock: fn() -> Option<Duration>,
    /// Linear memory cap per VM, in bytes.
    pub memory_bytes: usize,
    /// Table elements cap per VM.
    pub table_elements: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        // 100 ms: far above what a header or body callback needs (JWT verification with RSA is about 1 ms),
        // short enough that a looping filter stalls its worker only briefly before it is replaced.
        // 256 MiB: Rust filters use a few MiB; Go filters reserve more; above that is a leak.
        Limits {
            callback_deadline: Duration::from_millis(100),
            cpu_clock: super::deadline::thread_cpu_time,
            memory_bytes: 256 << 20,
            table_elements: 100_000,
        }
    }
}

impl Limits {
    /// The interval between two deadline checks of a call: half the deadline, at least one epoch tick.
    pub fn check_interval(&self) -> Duration {
        (self.callback_deadline / 2).max(EPOCH_TICK)
    }

    /// [`check_interval`](Self::check_interval) in epoch ticks (at least one; one more, since the first tick
    /// may come at once).
    pub fn check_ticks(&self) -> u64 {
        (self.check_interval().as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
    }
}

/// The process's WebAssembly runtime.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<VmState>,
    modules: Mutex<HashMap<String, Arc<LoadedModule>>>,
    /// Modules linked for a capability allow-list, by digest and list.
    restricted: Mutex<HashMap<String, Arc<LoadedModule>>>,
    limits: Limits,
    host: Arc<HostShared>,
    ticking: Arc<AtomicBool>,
}

impl WasmRuntime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(limits: Limits, host: Arc<HostShared>) -> wasmtime::Result<Arc<WasmRuntime>> {
        Self::with_cache(limits, host, None)
    }

    /// [`new`](Self::new), with compiled code kept in `cache_dir` (wasmtime's cache: keyed by the module's
    /// bytes and the engine's configuration and version, checked on load), so a restart or a swap back to a
    /// module compiled before does not compile it again.
    pub fn with_cache(
        limits: Limits,
        host: Arc<HostShared>,
        cache_dir: Option<&std::path::Path>,
    ) -> wasmtime::Result<Arc<WasmRuntime>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        if std::env::var_os(PERF_MAP_ENV).is_some_and(|v| v == "1") {
            // `/tmp/perf-<pid>.map` names the compiled guest functions for `perf report` (docs/writing-filters.md).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if let Some(dir) = cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            config.cache(Some(wasmtime::Cache::new(cache)?));
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        abi::add_to_linker(&mut linker)?;
        let ticking = Arc::new(AtomicBool::new(true));
        let ticker_engine = engine.weak();
        let flag = ticking.clone();
        std::thread::Builder::new().name("weir-epoch".into()).spawn(move || {
            while flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match ticker_engine.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => return,
                }
            }
        })?;
        Ok(Arc::new(WasmRuntime {
            engine,
            linker,
            modules: Mutex::new(HashMap::new()),
            restricted: Mutex::new(HashMap::new()),
            limits,
            host,
            ticking,
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Process-wide shared data, queues and metrics.
    pub fn host(&self) -> &Arc<HostShared> {
        &self.host
    }

    /// The limits VMs run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles and checks a module, or returns the one already compiled from the same bytes.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        self.load_restricted(name, bytes, None)
    }

    /// [`load`](Self::load), linked for a capability allow-list (ABI §5.13): every import the list leaves out
    /// is a stub, and callbacks it leaves out are absent. The module is compiled once whatever the lists;
    /// each distinct list gets its own linking, cached beside it.
    pub fn load_restricted(
        &self,
        name: &str,
        bytes: &[u8],
        capabilities: Option<&Allowed>,
    ) -> Result<Arc<LoadedModule>, LoadError> {
        let digest = hex(&Sha256::digest(bytes));
        let cached = self.modules.lock().unwrap_or_else(|e| e.into_inner()).get(&digest).cloned();
        let plain = match cached {
            Some(m) => m,
            None => {
                let loaded = Arc::new(LoadedModule::compile(&self.engine, &self.linker, name, &digest, bytes)?);
                self.modules.lock().unwrap_or_else(|e| e.into_inner()).insert(digest.clone(), loaded.clone());
                loaded
            }
        };
        let Some(allowed) = capabilities else { return Ok(plain) };
        let key = format!("{digest}:{}", allowed.iter().map(String::as_str).collect::<Vec<_>>().join(","));
        if let Some(m) = self.restricted.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(m.clone());
        }
        let loaded = Arc::new(plain.restricted(&self.linker, allowed)?);
        self.restricted.lock().unwrap_or_else(|e| e.into_inner()).insert(key, loaded.clone());
        Ok(loaded)
    }

    /// Modules compiled so far.
    pub fn cached_modules(&self) -> usize {
        self.modules.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Drops the compiled module with this digest (hex) unless something still uses it (a VM, a plan, a
    /// caller): a removed filter version does not stay in memory. Returns whether it was dropped.
    pub fn forget(&self, digest: &str) -> bool {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if modules.get(digest).is_none_or(|m| Arc::strong_count(m) > 1) {
            return false;
        }
        modules.remove(digest);
        let mut restricted = self.restricted.lock().unwrap_or_else(|e| e.into_inner());
        restricted.retain(|key, m| !(key.starts_with(digest) && Arc::strong_count(m) == 1));
        true
    }
}

impl Drop for WasmRuntime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
