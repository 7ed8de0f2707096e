//! From an effective configuration to one pipeline per worker: the route table, the clusters (kept from
//! the previous snapshot when unchanged, with their pooled connections), and the filter VMs, every
//! attachment started and configured on a canary VM first.

use super::BuildError;
use crate::abi::HostShared;
use crate::config::{Config, ModuleRef};
use crate::filter::{FilterPlan, WorkerFilters};
use crate::proxy::Pipeline;
use crate::registry::RegistryError;
use crate::router::Router;
use crate::telemetry::metrics::Metrics;
use crate::upstream::health::{ClusterState, ClusterStates};
use crate::upstream::TlsConfigs;
use crate::wasm::{Limits, WasmRuntime};
use std::sync::{Arc, Mutex};

/// Reads a registry module by sha256 hex.
pub type BlobReader<'a> = dyn Fn(&str) -> Result<Option<Vec<u8>>, RegistryError> + 'a;

/// Builds snapshots for a fixed number of workers. Owns the WebAssembly runtime, created the first time a
/// configuration has filters and kept for the process: compiled modules and the state filters share
/// (shared data, queues, metrics) outlive every snapshot.
pub struct Builder {
    workers: usize,
    metrics: Arc<Metrics>,
    cache_dir: Option<std::path::PathBuf>,
    runtime: Mutex<Option<Arc<WasmRuntime>>>,
    /// Health, ejections and circuit breakers of each cluster, kept across snapshots.
    states: ClusterStates,
}

impl Builder {
    /// A builder for `workers` workers; compiled code is cached in `cache_dir` when given.
    pub fn new(workers: usize, metrics: Arc<Metrics>, cache_dir: Option<std::path::PathBuf>) -> Builder {
        Builder { workers, metrics, cache_dir, runtime: Mutex::new(None), states: ClusterStates::default() }
    }

    /// The clusters' shared states (health, ejections, breakers) of the current snapshot.
    pub fn cluster_states(&self) -> Vec<Arc<ClusterState>> {
        self.states.all()
    }

    /// The metric registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The WebAssembly runtime, created on first use.
    pub fn runtime(&self) -> Result<Arc<WasmRuntime>, BuildError> {
        let mut slot = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &*slot {
            return Ok(r.clone());
        }
        let host = HostShared::new(self.metrics.clone());
        let runtime = WasmRuntime::with_cache(Limits::default(), host, self.cache_dir.as_deref())
            .map_err(|e| BuildError::Wasm(format!("{e:#}")))?;
        *slot = Some(runtime.clone());
        Ok(runtime)
    }

    /// Drops the compiled module of a removed filter version, unless something still uses it.
    pub fn forget_module(&self, digest_hex: &str) {
        let runtime = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if runtime.is_some_and(|r| r.forget(digest_hex)) {
            tracing::debug!(digest = digest_hex, "compiled module of a removed filter version dropped");
        }
    }

    /// One pipeline per worker for `config`. `previous` (the pipelines being replaced, by worker) lends
    /// its unchanged clusters; `blob` reads registry modules by sha256 hex.
    pub fn pipelines(
        &self,
        config: &Config,
        previous: &[Arc<Pipeline>],
        blob: &BlobReader,
    ) -> Result<Vec<Pipeline>, BuildError> {
        let router = Arc::new(Router::new(&config.routes)?);
        let tls = TlsConfigs::build(&config.clusters)?;
        let plan = if config.routes.iter().any(|r| !r.filters.is_empty()) {
            let read = |module: &ModuleRef| match module {
                ModuleRef::File(path) => std::fs::read(path),
                ModuleRef::Registry { reference, digest } => {
                    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
                    match blob(hex) {
                        Ok(Some(bytes)) => Ok(bytes),
                        Ok(None) => Err(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("the registry holds no module {digest} for {reference}"),
                        )),
                        Err(e) => Err(std::io::Error::other(e.to_string())),
                    }
                }
            };
            Some(Arc::new(FilterPlan::build_reading(self.runtime()?, &config.routes, &config.clusters, &read)?))
        } else {
            None
        };
        let states = self.states.update(&config.clusters, &tls, &self.metrics);
        let mut out = Vec::with_capacity(self.workers);
        for id in 0..self.workers {
            let filters = match &plan {
                Some(p) => Some(WorkerFilters::new(p.clone(), id)?),
                None => None,
            };
            let before = previous.get(id).map(|p| &**p);
            out.push(Pipeline::new(id, config, router.clone(), &tls, &self.metrics, &states, filters, before));
        }
        Ok(out)
    }
}
