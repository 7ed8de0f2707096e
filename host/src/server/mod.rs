//! Starting and stopping the gateway: everything is validated and bound before the first worker
//! starts, so a bad certificate or a taken port fails the start with a clear error and nothing runs.

mod balance;
pub mod h1;
mod idle;
mod listener;
mod rewind;
mod tls;
mod worker;

pub use tls::ListenerTlsError;
pub use worker::Swap;

use crate::admin::{self, AdminState};
use crate::config::{Config, ConfigError};
use crate::control::{BuildError, Builder, Control};
use crate::registry::{Registry, RegistryError};
use crate::telemetry::metrics::Metrics;
use crate::upstream::UpstreamTlsError;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener address could not be bound.
    #[error("listener {listener}: cannot bind {address}: {source}")]
    Bind {
        /// Listener name ("admin" for the admin listener).
        listener: String,
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A listener's certificate or key is unusable.
    #[error(transparent)]
    ListenerTls(#[from] ListenerTlsError),
    /// A cluster's TLS configuration is unusable.
    #[error(transparent)]
    UpstreamTls(#[from] UpstreamTlsError),
    /// A route's regular expression does not compile.
    #[error("route table: {0}")]
    Router(#[from] regex::Error),
    /// The data directory or the admin token file is unusable.
    #[error(transparent)]
    Admin(#[from] admin::TokenError),
    /// A filter does not load, does not start, or refuses its configuration.
    #[error(transparent)]
    Filter(Box<crate::filter::FilterSetupError>),
    /// The WebAssembly runtime could not be created.
    #[error("cannot create the WebAssembly runtime: {0}")]
    Wasm(String),
    /// The shipped filters or the demo routes could not be written into the registry.
    #[error("seeding the registry: {0}")]
    Seed(#[from] crate::demo::seed::SeedError),
    /// The registry could not be opened or read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The configuration file composed with the registry's routes and clusters is invalid.
    #[error("{0}\n(paths starting with \"registry.\" name records in the data dir's registry: put back in the file what they need, or start with the previous file and change or remove them, e.g. weir route rm ID)")]
    Composed(#[from] ConfigError),
    /// A thread or runtime could not be started.
    #[error("cannot start {what}: {source}")]
    Runtime {
        /// What could not start.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// State every worker and the admin API see.
pub struct Shared {
    /// The metric registry.
    pub metrics: Arc<Metrics>,
    workers: usize,
    started: AtomicUsize,
    draining: AtomicBool,
}

impl From<crate::filter::FilterSetupError> for StartError {
    fn from(e: crate::filter::FilterSetupError) -> StartError {
        StartError::Filter(Box::new(e))
    }
}

impl From<BuildError> for StartError {
    fn from(e: BuildError) -> StartError {
        match e {
            BuildError::Router(e) => StartError::Router(e),
            BuildError::UpstreamTls(e) => StartError::UpstreamTls(e),
            BuildError::Filter(e) => StartError::Filter(e),
            BuildError::Wasm(e) => StartError::Wasm(e),
        }
    }
}

impl Shared {
    fn worker_started(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    /// Every worker accepts and the gateway is not draining.
    pub fn ready(&self) -> bool {
        self.started.load(Ordering::Acquire) >= self.workers && !self.draining.load(Ordering::Acquire)
    }

    /// A shutdown has begun.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// Options that override the configuration file.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    /// Worker count (`--workers`).
    pub workers: Option<usize>,
    /// Where the registry lives (`weir serve`: `<data_dir>/registry`). `None`: a temporary store removed at
    /// exit, for embedders and tests.
    pub registry_dir: Option<PathBuf>,
    /// Where compiled filter code is cached across restarts (`weir serve`: `<data_dir>/compiled`). `None`:
    /// compiled in memory only.
    pub cache_dir: Option<PathBuf>,
    /// What to write into the registry before the first snapshot (`weir serve`: the shipped filters, and the
    /// demo routes for the embedded demo). `None`: nothing.
    pub seed: Option<crate::demo::seed::Seed>,
}

/// A running gateway. Dropping it begins a shutdown without waiting; [`Gateway::shutdown`] waits.
pub struct Gateway {
    listeners: BTreeMap<String, SocketAddr>,
    admin_addr: SocketAddr,
    admin_token: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    admin_stop: watch::Sender<bool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    admin: Mutex<Option<JoinHandle<()>>>,
    control: Arc<Control>,
}

impl Gateway {
    /// Validates what the configuration refers to, binds every socket, then starts the workers and the
    /// admin listener. Returns once the sockets accept (connections queue until the workers run).
    pub fn start(config: Config, options: StartOptions) -> Result<Gateway, StartError> {
        let workers = options
            .workers
            .or(config.workers)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let admin_token = admin::token(&config)?;
        let metrics = Arc::new(Metrics::new());
        let registry = match &options.registry_dir {
            Some(dir) => Registry::open(dir)?,
            None => Registry::temporary()?,
        };
        let builder = Builder::new(workers, metrics.clone(), options.cache_dir.clone());
        // What the seed adds is composed, built and started like the rest before it is written, so a seed that
        // would not start stops this start without changing the data dir.
        let (seed, seeded) = match &options.seed {
            Some(seed) => crate::demo::seed::plan(seed, &registry)?,
            None => Default::default(),
        };
        let state = registry.state()?.apply(&seed);
        let effective = config.with_registry(&state)?;
        // Every module loaded and every attachment configured on a canary VM before any socket is bound, so a
        // refused configuration stops the start with the filter's own words.
        let blob = |hex: &str| match seed.put_blobs.iter().find(|(h, _)| h == hex) {
            Some((_, bytes)) => Ok(Some(bytes.clone())),
            None => registry.blob(hex),
        };
        let pipelines = builder.pipelines(&effective, &[], &blob)?;
        let mut state = state;
        if !seed.is_empty() {
            state.generation = registry.commit(&seed)?;
            tracing::info!(filters = ?seeded.filters, routes = ?seeded.routes, "seeded the registry");
        }
        // Bind everything first: a taken port fails the start before any thread runs.
        let mut per_worker: Vec<Vec<worker::WorkerListener>> = (0..workers).map(|_| Vec::new()).collect();
        let mut bound = BTreeMap::new();
        for l in &config.listeners {
            let acceptor = match &l.tls {
                Some(t) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(&l.name, t)?)),
                None => None,
            };
            let sockets = listener::bind_reuseport(l.address, workers).map_err(|source| StartError::Bind {
                listener: l.name.clone(),
                address: l.address,
                source,
            })?;
            let addr = sockets[0].local_addr().map_err(|source| StartError::Bind {
                listener: l.name.clone(),
                address: l.address,
                source,
            })?;
            bound.insert(l.name.clone(), addr);
            let (balancer, inboxes) = balance::Balancer::new(sockets.len());
            let mut inboxes = inboxes.into_iter();
            for (w, socket) in sockets.into_iter().enumerate() {
                let balance = inboxes.next().filter(|_| per_worker.len() > 1).map(|inbox| (balancer.clone(), inbox));
                per_worker[w].push(worker::WorkerListener {
                    name: l.name.clone(),
                    socket,
                    tls: acceptor.clone(),
                    idle_timeout: l.idle_timeout,
                    header_timeout: l.header_timeout,
                    balance,
                });
            }
        }
        let admin_socket = listener::bind_single(config.admin.address).map_err(|source| StartError::Bind {
            listener: "admin".into(),
            address: config.admin.address,
            source,
        })?;
        let admin_addr = admin_socket.local_addr().map_err(|source| StartError::Bind {
            listener: "admin".into(),
            address: config.admin.address,
            source,
        })?;

        let shared = Arc::new(Shared {
            metrics: metrics.clone(),
            workers,
            started: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
        });
        let drain = config.drain_timeout;
        let (control, starts) = Control::new(config, registry, builder, effective, state.generation, pipelines);
        let control = Arc::new(control);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut threads = Vec::new();
        for ((id, listeners), start) in per_worker.into_iter().enumerate().zip(starts) {
            let shared = shared.clone();
            let rx = shutdown_rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("weir-worker-{id}"))
                .spawn(move || {
                    if let Err(e) = worker::run(id, start.current, start.swaps, listeners, shared, rx, drain) {
                        tracing::error!(worker = id, error = %e, "worker stopped with an error");
                    }
                })
                .map_err(|source| StartError::Runtime { what: format!("worker {id}"), source })?;
            threads.push(handle);
        }
        let admin_state = AdminState {
            shared: shared.clone(),
            token: admin_token.clone(),
            control: control.clone(),
            listeners: bound.clone(),
        };
        let (admin_stop, rx) = watch::channel(false);
        let admin_thread = std::thread::Builder::new()
            .name("weir-admin".into())
            .spawn(move || {
                if let Err(e) = admin::run(admin_socket, admin_state, rx) {
                    tracing::error!(error = %e, "admin listener stopped with an error");
                }
            })
            .map_err(|source| StartError::Runtime { what: "admin listener".into(), source })?;
        for (name, addr) in &bound {
            tracing::info!(listener = %name, address = %addr, workers, "listening");
        }
        tracing::info!(address = %admin_addr, "admin listening");
        Ok(Gateway {
            listeners: bound,
            admin_addr,
            admin_token,
            shared,
            shutdown,
            admin_stop,
            workers: Mutex::new(threads),
            admin: Mutex::new(Some(admin_thread)),
            control,
        })
    }

    /// The address a data-plane listener is bound to.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.get(name).copied()
    }

    /// The control plane (registry and hot swap), as the admin API uses it.
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The bearer token the admin API expects.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Whether every worker accepts.
    pub fn ready(&self) -> bool {
        self.shared.ready()
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain timeout), and waits for every
    /// thread to end. Blocking: call it from a plain thread or `spawn_blocking`.
    pub fn shutdown(&self) {
        self.shared.draining.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for t in workers {
            let _ = t.join();
        }
        // The admin API answers /readyz with 503 for the whole drain; it stops last.
        let _ = self.admin_stop.send(true);
        if let Some(t) = self.admin.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shared.draining.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
        let _ = self.admin_stop.send(true);
    }
}
