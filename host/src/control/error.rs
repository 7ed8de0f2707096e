//! What can go wrong in the control plane. The admin API maps these to HTTP in one place
//! (`admin::respond`).

use crate::config::ConfigError;
use crate::filter::FilterSetupError;
use crate::registry::RegistryError;
use crate::upstream::UpstreamTlsError;
use crate::wasm::{LoadError, VmError};

/// Why a snapshot could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A route's regular expression does not compile.
    #[error("route table: {0}")]
    Router(#[from] regex::Error),
    /// A cluster's TLS configuration is unusable.
    #[error(transparent)]
    UpstreamTls(#[from] UpstreamTlsError),
    /// A filter does not load, does not start, or refuses its configuration.
    #[error(transparent)]
    Filter(Box<FilterSetupError>),
    /// The WebAssembly runtime could not be created.
    #[error("cannot create the WebAssembly runtime: {0}")]
    Wasm(String),
}

impl From<FilterSetupError> for BuildError {
    fn from(e: FilterSetupError) -> BuildError {
        BuildError::Filter(Box::new(e))
    }
}

impl BuildError {
    /// The filter's own log lines, when it refused to start or to take its configuration.
    pub fn filter_logs(&self) -> &[String] {
        match self {
            BuildError::Filter(e) => match &**e {
                FilterSetupError::Start { source, .. } => match &**source {
                    VmError::VmStartRefused { logs, .. } | VmError::ConfigureRefused { logs, .. } => logs,
                    _ => &[],
                },
                _ => &[],
            },
            _ => &[],
        }
    }
}

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request itself is malformed (a bad name, version or body).
    #[error("{0}")]
    BadRequest(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts what is stored (an immutable version, something still in use).
    #[error("{0}")]
    Conflict(String),
    /// The artifact is not signed by a trusted key while the gateway requires it.
    #[error("{0}")]
    Untrusted(String),
    /// The resulting configuration is invalid (every issue with its JSON path).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration is valid but could not be started (a filter refused its configuration, ...).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The uploaded module does not load.
    #[error(transparent)]
    Module(#[from] Box<LoadError>),
    /// The store failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A worker did not take the new snapshot in time (the change is stored and will serve after a restart).
    #[error("{0}")]
    Swap(String),
}
