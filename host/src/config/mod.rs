//! The gateway configuration: the typed model, and loading it from one JSON file with every problem
//! reported at once (file, JSON path, what is wrong, how to fix it).
//!
//! The model is plain data: validated here once, then compiled into the router and the upstream
//! clusters by the server. Nothing in this module opens a socket.

mod parse;
mod reader;
mod resilience;

pub use reader::ConfigIssue;
pub use resilience::{CircuitBreakers, Fallback, HealthCheck, OutlierDetection, RetryPolicy};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// Where the gateway keeps its state (admin token, later the registry).
    pub data_dir: PathBuf,
    /// Data-plane listeners.
    pub listeners: Vec<Listener>,
    /// The admin listener.
    pub admin: Admin,
    /// Routes, matched in declared order.
    pub routes: Vec<Route>,
    /// Upstream clusters by name.
    pub clusters: Vec<Cluster>,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Logging.
    pub logging: Logging,
    /// Which filter artifacts the registry accepts.
    pub registry: RegistrySettings,
    /// The JSON this was parsed from, kept so that the registry's routes and clusters can be composed with
    /// it again after every change.
    pub source: Arc<ConfigSource>,
}

/// `"registry"`: which artifacts the admin API accepts.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Public keys (`trusted_keys`: SPKI PEM files) whose signatures are trusted.
    pub trusted_keys: Vec<ed25519_dalek::VerifyingKey>,
    /// Accept only artifacts signed by one of `trusted_keys` (no raw `.wasm` uploads, no unsigned artifacts).
    pub require_signed: bool,
}

/// Where a configuration came from.
#[derive(Debug)]
pub struct ConfigSource {
    /// The parsed JSON document.
    pub doc: serde_json::Value,
    /// The file name used in errors.
    pub file: String,
    /// The folder relative paths are resolved against.
    pub base: PathBuf,
}

/// A data-plane listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Name used in metrics and logs.
    pub name: String,
    /// Address to bind (port 0 picks a free port).
    pub address: SocketAddr,
    /// TLS termination; plain HTTP (HTTP/1.1 and h2c prior knowledge) when absent.
    pub tls: Option<ListenerTls>,
    /// Close keep-alive connections idle for longer than this.
    pub idle_timeout: Duration,
    /// Maximum time to receive a request's headers.
    pub header_timeout: Duration,
}

/// TLS termination for a listener: one or more certificates, chosen by SNI.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerTls {
    /// Certificates in declared order; the first without `server_names` (or the first) is the default.
    pub certificates: Vec<Certificate>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// PEM certificate chain file.
    pub cert_file: PathBuf,
    /// PEM private key file.
    pub key_file: PathBuf,
    /// SNI names this certificate serves (`*.example.com` allowed); empty: the default certificate.
    pub server_names: Vec<String>,
}

/// The admin listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Address to bind; 127.0.0.1:9901 by default.
    pub address: SocketAddr,
    /// Bearer token from the file; `WEIR_ADMIN_TOKEN` or a generated one otherwise.
    pub token: Option<String>,
}

/// How to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    /// Line format.
    pub format: LogFormat,
    /// One access-log line per request.
    pub access_log: bool,
}

/// A route: what to match, and where to send what matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Name used in logs and metrics.
    pub name: String,
    /// The match conditions, all of which must hold.
    pub matcher: RouteMatch,
    /// Where matching requests go.
    pub action: RouteAction,
    /// Replaces the matched path prefix (prefix matches only).
    pub prefix_rewrite: Option<String>,
    /// Replaces the Host header sent upstream.
    pub host_rewrite: Option<String>,
    /// Headers set on the request before it goes upstream.
    pub request_headers_to_add: Vec<(String, String)>,
    /// Headers removed from the request before it goes upstream.
    pub request_headers_to_remove: Vec<String>,
    /// Overrides the cluster's request timeout.
    pub timeout: Option<Duration>,
    /// proxy-wasm filters, in chain order.
    pub filters: Vec<FilterAttachment>,
    /// When and how to try again (none: never).
    pub retry_policy: Option<RetryPolicy>,
    /// What to do when the cluster has no available endpoint or a circuit is open (none: answer 503).
    pub fallback: Option<Fallback>,
}

/// A proxy-wasm filter attached to a route.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterAttachment {
    /// Name in logs and metrics (defaults to the module's file stem).
    pub name: String,
    /// Where the module comes from.
    pub module: ModuleRef,
    /// Selects the root context in multi-plugin modules (`plugin_root_id`).
    pub root_id: String,
    /// VMs are shared by attachments with the same module, `vm_id` and VM configuration.
    pub vm_id: String,
    /// Bytes given to `proxy_on_configure` (a JSON value is passed as JSON text, a string as is).
    pub configuration: Vec<u8>,
    /// Bytes given to `proxy_on_vm_start`.
    pub vm_configuration: Vec<u8>,
    /// The VM's environment (WASI `environ_get`), sorted by name: `environment_variables.key_values`, and
    /// `environment_variables.host_env_keys` read from the gateway's own environment at load (Envoy's
    /// `vm_config.environment_variables`). Attachments whose environments differ never share a VM.
    pub environment: Vec<(String, String)>,
    /// What a failing filter does to its stream.
    pub failure_policy: FailurePolicy,
    /// Envoy's `allow_on_headers_stop_iteration`: a PAUSE from a headers callback of a request or response with a
    /// body holds the headers while the body callbacks go on (StopIteration), instead of holding everything until
    /// the filter resumes (StopAllIteration, the default).
    pub allow_on_headers_stop_iteration: bool,
    /// The capabilities (hostcalls, WASI functions, callbacks) the filter may use, sorted and unique;
    /// `None`: all of them. Attachments whose lists differ never share a VM.
    pub capabilities: Option<Vec<String>>,
}

/// Where an attachment's module comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleRef {
    /// A `.wasm` file (`"module"` in a configuration file).
    File(PathBuf),
    /// A version stored in the registry (`"filter": "name@version"`, pinned by `"digest"`).
    Registry {
        /// `name@version`.
        reference: String,
        /// `sha256:<hex>`.
        digest: String,
    },
}

impl ModuleRef {
    /// The registry filter's name (`jwt-auth` of `jwt-auth@1.2.0`); `None` for a file.
    pub fn filter_name(&self) -> Option<&str> {
        match self {
            ModuleRef::File(_) => None,
            ModuleRef::Registry { reference, .. } => reference.split('@').next(),
        }
    }
}

impl std::fmt::Display for ModuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModuleRef::File(p) => write!(f, "{}", p.display()),
            ModuleRef::Registry { reference, digest } => write!(f, "{reference} ({digest})"),
        }
    }
}

/// What happens to a stream when its filter traps or exceeds a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Answer 503 (the default).
    FailClosed,
    /// Go on as if the filter were absent.
    FailOpen,
}

/// What a route does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Proxy to the named cluster.
    Cluster(String),
    /// Answer directly.
    Direct(DirectResponse),
}

/// A response the gateway gives itself.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

/// Route match conditions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMatch {
    /// Host patterns (exact or `*.suffix`); empty: any host.
    pub hosts: Vec<String>,
    /// Path condition; `None`: any path.
    pub path: Option<PathMatch>,
    /// Methods (upper case); empty: any method.
    pub methods: Vec<String>,
    /// Header conditions.
    pub headers: Vec<HeaderMatch>,
}

/// A path condition.
#[derive(Debug, Clone, PartialEq)]
pub enum PathMatch {
    /// The path equals this.
    Exact(String),
    /// The path starts with this.
    Prefix(String),
    /// The whole path matches this regular expression.
    Regex(String),
}

/// A header condition.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatch {
    /// Header name, lower case.
    pub name: String,
    /// What the header must be.
    pub condition: HeaderCondition,
}

/// What a header condition requires.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderCondition {
    /// The header is present (true) or absent (false).
    Present(bool),
    /// The header equals this value.
    Exact(String),
}

/// An upstream cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Name routes refer to.
    pub name: String,
    /// Static endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Load-balancing policy.
    pub lb_policy: LbPolicy,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the upstream to send response headers.
    pub request_timeout: Duration,
    /// Pooled connections idle longer than this are closed.
    pub idle_timeout: Duration,
    /// Maximum idle pooled connections per endpoint per worker.
    pub max_idle_per_endpoint: usize,
    /// Speak HTTP/2 (prior knowledge, or ALPN over TLS) to the endpoints.
    pub http2: bool,
    /// TLS to the endpoints.
    pub tls: Option<UpstreamTls>,
    /// Active health checks (none: every endpoint counts as healthy unless ejected).
    pub health_check: Option<HealthCheck>,
    /// Passive outlier ejection (none: endpoints are never ejected).
    pub outlier_detection: Option<OutlierDetection>,
    /// Limits across all workers; always on (Envoy's defaults unless set).
    pub circuit_breakers: CircuitBreakers,
}

/// An endpoint: `host:port` and a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `host:port` (an IP or a DNS name).
    pub address: String,
    /// Relative weight, 1 to 1000.
    pub weight: u32,
}

/// Load-balancing policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbPolicy {
    /// Weighted round robin (smooth, as nginx does it).
    RoundRobin,
    /// The endpoint with the fewest requests in flight (ties broken by weight).
    LeastRequest,
    /// Consistent hash on a key.
    ConsistentHash(HashKey),
}

/// What consistent hashing hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address.
    ClientIp,
    /// The value of a request header (lower-case name).
    Header(String),
}

/// TLS settings towards a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    /// PEM CA bundle; the system roots when absent.
    pub ca_file: Option<PathBuf>,
    /// SNI and verification name; the endpoint host when absent.
    pub server_name: Option<String>,
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the file: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{file}:{line}:{column}: not valid JSON: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// The JSON is well formed but the configuration is not valid.
    #[error("{}", render_issues(file, issues))]
    Invalid {
        /// The file.
        file: String,
        /// Every problem found.
        issues: Vec<ConfigIssue>,
    },
}

fn render_issues(file: &str, issues: &[ConfigIssue]) -> String {
    let mut out =
        format!("{file}: {} error{} in the configuration", issues.len(), if issues.len() == 1 { "" } else { "s" });
    for issue in issues {
        out.push_str(&format!("\n  {file}: {issue}"));
    }
    out
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        Config::from_json(&text, &file, base)
    }

    /// Parses and validates configuration text; `file` names it in errors, relative file paths in it
    /// are resolved against `base`.
    pub fn from_json(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
        })?;
        let source = Arc::new(ConfigSource { doc: value, file: file.to_string(), base: base.to_path_buf() });
        parse::config(source, &parse::Extra::default())
            .map_err(|issues| ConfigError::Invalid { file: file.to_string(), issues })
    }

    /// This configuration's file composed with the registry's clusters and routes: the file's clusters
    /// and routes first (in their order), then the registry's. Names must be unique across both.
    /// Problems in registry records carry paths like `registry.routes["api"].cluster`.
    pub fn with_registry(&self, state: &crate::registry::State) -> Result<Config, ConfigError> {
        let extra = parse::Extra {
            clusters: state.clusters.iter().map(|(n, v)| (format!("registry.clusters[\"{n}\"]"), v.clone())).collect(),
            routes: state.routes.iter().map(|(id, v)| (format!("registry.routes[\"{id}\"]"), v.clone())).collect(),
        };
        parse::config(self.source.clone(), &extra)
            .map_err(|issues| ConfigError::Invalid { file: self.source.file.clone(), issues })
    }

    /// The embedded default configuration (`weir config default`): a welcome route that answers by itself.
    pub fn embedded_default() -> Config {
        Config::from_json(DEFAULT_CONFIG, "<embedded default>", Path::new(""))
            .expect("the embedded default configuration is valid")
    }

    /// What `weir serve` runs with no `--config`: the embedded default plus the cluster `demo-llm`, the demo LLM
    /// upstream listening on `demo_llm` (the demo routes, in the registry, send to it).
    pub fn embedded_demo(demo_llm: std::net::SocketAddr) -> Config {
        Config::embedded_default()
            .edited(|doc| {
                if let Some(clusters) = doc.get_mut("clusters").and_then(serde_json::Value::as_array_mut) {
                    clusters.push(serde_json::json!({ "name": "demo-llm", "endpoints": [demo_llm.to_string()] }));
                }
            })
            .expect("the embedded demo configuration is valid")
    }

    /// This configuration with its JSON edited by `edit`, validated again (same file name and base folder), so
    /// that the edit also holds when the registry's records are composed with it after a change.
    pub fn edited(&self, edit: impl FnOnce(&mut serde_json::Value)) -> Result<Config, ConfigError> {
        let mut doc = self.source.doc.clone();
        edit(&mut doc);
        let source = Arc::new(ConfigSource { doc, file: self.source.file.clone(), base: self.source.base.clone() });
        parse::config(source, &parse::Extra::default())
            .map_err(|issues| ConfigError::Invalid { file: self.source.file.clone(), issues })
    }
}

/// The embedded default configuration (also shipped as `examples/default.json`).
pub const DEFAULT_CONFIG: &str = include_str!("default.json");

#[cfg(test)]
mod tests;
