//! The control plane: the registry, the snapshot the workers serve, and every change between them.
//!
//! A change (publish, attach, detach, route or cluster edit, apply) goes through [`Control::change`]:
//!
//! 1. under one lock, the registry's state is read and the change computed from it;
//! 2. the configuration file is composed with the state the change would leave, and validated;
//! 3. a new snapshot is built off the request path: route table, clusters, and for each worker its
//!    filter VMs, started and configured (a filter that refuses stops here, with its own log lines);
//! 4. the change is committed to sled in one transaction and flushed;
//! 5. each worker is handed its new pipeline and answers once it serves with it.
//!
//! Streams that started before step 5 finish on the pipeline they started with; its VMs are dropped when
//! the last of them ends. Nothing is stored unless it could be started, and nothing is served unless it is
//! stored.

mod build;
mod error;
mod mutate;

pub use build::Builder;
pub use error::{BuildError, ControlError};
pub use mutate::{AttachSpec, PublishMeta, Published};

use crate::config::Config;
use crate::proxy::Pipeline;
use crate::registry::{Change, Registry, State};
use crate::server::Swap;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a worker may take to take a new snapshot before the change is reported as not yet serving.
const SWAP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the workers serve now.
pub struct Running {
    /// The effective configuration (file and registry composed).
    pub config: Arc<Config>,
    /// The registry generation it was built from.
    pub generation: u64,
    pipelines: Vec<Arc<Pipeline>>,
}

/// One worker, as the control plane reaches it.
struct WorkerHandle {
    swaps: mpsc::UnboundedSender<Swap>,
}

/// What a committed change did.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    /// The registry generation after the change.
    pub generation: u64,
    /// From the start of the change to every worker serving it, when it changed what they serve.
    pub swap: Option<Duration>,
}

/// The control plane.
pub struct Control {
    base: Config,
    registry: Registry,
    builder: Builder,
    workers: Vec<WorkerHandle>,
    running: Mutex<Running>,
    /// Serialises changes: one at a time, each computed from the state the previous one left.
    changing: Mutex<()>,
    trust: mutate::Trust,
}

/// What a worker thread needs to serve and to receive swaps.
pub struct WorkerStart {
    /// The pipeline it serves, replaced on swaps.
    pub current: Arc<ArcSwap<Pipeline>>,
    /// Where swaps arrive.
    pub swaps: mpsc::UnboundedReceiver<Swap>,
}

impl Control {
    /// The control plane over `registry` for a gateway started from `base` (the configuration file),
    /// serving `effective` (built into `pipelines`, one per worker).
    pub fn new(
        base: Config,
        registry: Registry,
        builder: Builder,
        effective: Config,
        generation: u64,
        pipelines: Vec<Pipeline>,
    ) -> (Control, Vec<WorkerStart>) {
        let pipelines: Vec<Arc<Pipeline>> = pipelines.into_iter().map(Arc::new).collect();
        let mut workers = Vec::new();
        let mut starts = Vec::new();
        for p in &pipelines {
            let (tx, rx) = mpsc::unbounded_channel();
            workers.push(WorkerHandle { swaps: tx });
            starts.push(WorkerStart { current: Arc::new(ArcSwap::new(p.clone())), swaps: rx });
        }
        let trust = mutate::Trust::from_config(&base);
        let running = Running { config: Arc::new(effective), generation, pipelines };
        (
            Control { base, registry, builder, workers, running: Mutex::new(running), changing: Mutex::new(()), trust },
            starts,
        )
    }

    /// The effective configuration and its generation.
    pub fn running(&self) -> (Arc<Config>, u64) {
        let r = self.running.lock().unwrap_or_else(|e| e.into_inner());
        (r.config.clone(), r.generation)
    }

    /// Health, ejections and circuit breakers of the running clusters, by name.
    pub fn cluster_health(&self, name: &str) -> Option<serde_json::Value> {
        self.builder.cluster_states().into_iter().find(|s| &*s.name == name).map(|s| s.view())
    }

    /// The configuration file the gateway started from.
    pub fn base(&self) -> &Config {
        &self.base
    }

    /// The registry's state.
    pub fn state(&self) -> Result<State, ControlError> {
        Ok(self.registry.state()?)
    }

    /// A stored module's bytes.
    pub fn blob(&self, sha256_hex: &str) -> Result<Option<Vec<u8>>, ControlError> {
        Ok(self.registry.blob(sha256_hex)?)
    }

    /// Computes a change from the current state with `plan`, checks that what it leaves can be served,
    /// stores it, and swaps every worker to it. Blocking: call it off any async runtime's threads
    /// (`spawn_blocking`).
    pub fn change<T>(
        &self,
        plan: impl FnOnce(&State, &Control) -> Result<(Change, T), ControlError>,
    ) -> Result<(Applied, T), ControlError> {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let state = self.registry.state()?;
        let (change, out) = plan(&state, self)?;
        if change.is_empty() {
            return Ok((Applied { generation: state.generation, swap: None }, out));
        }
        if !change.touches_routing() {
            let generation = self.registry.commit(&change)?;
            self.running.lock().unwrap_or_else(|e| e.into_inner()).generation = generation;
            return Ok((Applied { generation, swap: None }, out));
        }
        let next = state.apply(&change);
        let config = self.base.with_registry(&next)?;
        let previous = self.running.lock().unwrap_or_else(|e| e.into_inner()).pipelines.clone();
        let pipelines: Vec<Arc<Pipeline>> = self
            .builder
            .pipelines(&config, &previous, &|hex| self.registry.blob(hex))?
            .into_iter()
            .map(Arc::new)
            .collect();
        let generation = self.registry.commit(&change)?;
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            *running = Running { config: Arc::new(config), generation, pipelines: pipelines.clone() };
        }
        self.swap_workers(pipelines)?;
        let swap = started.elapsed();
        tracing::info!(generation, swap_ms = swap.as_secs_f64() * 1e3, "configuration change serving on every worker");
        Ok((Applied { generation, swap: Some(swap) }, out))
    }

    /// Hands each worker its pipeline and waits until every one serves with it.
    fn swap_workers(&self, pipelines: Vec<Arc<Pipeline>>) -> Result<(), ControlError> {
        let mut waits = Vec::new();
        for (w, (worker, pipeline)) in self.workers.iter().zip(pipelines).enumerate() {
            let (done, rx) = std::sync::mpsc::sync_channel(1);
            if worker.swaps.send(Swap { pipeline, done }).is_err() {
                return Err(ControlError::Swap(format!("worker {w} has stopped; the change is stored")));
            }
            waits.push((w, rx));
        }
        let deadline = Instant::now() + SWAP_TIMEOUT;
        for (w, rx) in waits {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(()) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ControlError::Swap(format!("worker {w} has stopped; the change is stored")))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(ControlError::Swap(format!(
                        "worker {w} did not take the change within {} s; it is stored and serves once the worker catches up",
                        SWAP_TIMEOUT.as_secs()
                    )))
                }
            }
        }
        Ok(())
    }
}
