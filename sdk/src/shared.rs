//! Shared data: a key-value store shared by every VM with the same `vm_id` (every worker), that outlives VMs.
//!
//! Each value carries a [`Cas`] version; a write with the version read succeeds only if nobody wrote since.
//! Typed values are stored as JSON ([`get`], [`set`]); [`update`] does the read-modify-write loop.
//!
//! ```no_run
//! use weir_sdk::shared;
//!
//! // Count requests across workers; retries up to 8 times when another worker wrote in between.
//! let hits: u64 = shared::update("hits", 8, |hits: Option<u64>| hits.unwrap_or(0) + 1).unwrap_or(0);
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi::Status;
use crate::host::{found, raw};

/// The version of a shared value, from a read, to make a write conditional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cas(pub u32);

/// Why a shared-data operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SharedError {
    /// The host refused the call; `CasMismatch` means someone wrote since the read.
    Host(Status),
    /// The stored value is not the JSON of the type asked for (or the value could not be serialized).
    Json(serde_json::Error),
    /// [`update`] lost the race every time.
    Contended {
        /// How many writes were tried.
        attempts: u32,
    },
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedError::Host(status) => write!(f, "the host answered {status:?}"),
            SharedError::Json(error) => write!(f, "not the expected JSON: {error}"),
            SharedError::Contended { attempts } => write!(f, "the value changed during each of {attempts} attempts"),
        }
    }
}

impl std::error::Error for SharedError {}

impl From<Status> for SharedError {
    fn from(status: Status) -> SharedError {
        SharedError::Host(status)
    }
}

impl From<serde_json::Error> for SharedError {
    fn from(error: serde_json::Error) -> SharedError {
        SharedError::Json(error)
    }
}

/// The bytes stored under `key` and their version; `None` when the key was never set.
///
/// ```no_run
/// if let Ok(Some((bytes, _cas))) = weir_sdk::shared::get_bytes("banner") {
///     log::info!("{} bytes", bytes.len());
/// }
/// ```
pub fn get_bytes(key: &str) -> Result<Option<(Vec<u8>, Cas)>, Status> {
    Ok(found(raw::get_shared_data(key.as_bytes()))?.map(|(value, cas)| (value, Cas(cas))))
}

/// Stores `value` under `key`: unconditionally with `cas: None`, or only if the value is still at that version
/// (`Err(CasMismatch)` otherwise).
///
/// ```no_run
/// weir_sdk::shared::set_bytes("banner", b"hello", None).ok();
/// ```
pub fn set_bytes(key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), Status> {
    raw::set_shared_data(key.as_bytes(), value, cas.map_or(0, |cas| cas.0))
}

/// The JSON value stored under `key`, as a `T`, and its version; `None` when the key was never set (or holds an
/// empty value, which is how the ABI removes one).
///
/// ```no_run
/// let limits: Option<(Vec<u32>, _)> = weir_sdk::shared::get("limits").unwrap_or(None);
/// ```
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<(T, Cas)>, SharedError> {
    match get_bytes(key)? {
        Some((bytes, cas)) if !bytes.is_empty() => Ok(Some((serde_json::from_slice(&bytes)?, cas))),
        _ => Ok(None),
    }
}

/// Stores `value` as JSON under `key`, conditionally on `cas` as in [`set_bytes`].
///
/// ```no_run
/// weir_sdk::shared::set("limits", &vec![10, 20], None).ok();
/// ```
pub fn set<T: Serialize + ?Sized>(key: &str, value: &T, cas: Option<Cas>) -> Result<(), SharedError> {
    Ok(set_bytes(key, &serde_json::to_vec(value)?, cas)?)
}

/// The CAS [`update`] writes a key it found absent with. Hosts create a missing key whatever the CAS, but refuse
/// a non-zero CAS that does not match an existing key's: so if another writer created the key in between, the
/// write fails with `CasMismatch` and is retried, where a CAS of 0 would overwrite it. (A host's CAS counter would
/// have to reach `u32::MAX` for this to match by chance.)
const ABSENT: Cas = Cas(u32::MAX);

/// Read-modify-write with compare-and-swap: reads `key` (as JSON `T`), computes the new value with `change`, and
/// writes it if nobody wrote in between, retrying up to `retries` more times. Returns the value written.
///
/// ```no_run
/// use weir_sdk::shared;
///
/// let seen: Vec<String> = shared::update("paths", 4, |paths: Option<Vec<String>>| {
///     let mut paths = paths.unwrap_or_default();
///     paths.push("/new".into());
///     paths
/// })
/// .unwrap_or_default();
/// ```
pub fn update<T, F>(key: &str, retries: u32, mut change: F) -> Result<T, SharedError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> T,
{
    for _ in 0..=retries {
        let (current, cas) = match get_bytes(key)? {
            Some((bytes, cas)) if !bytes.is_empty() => (Some(serde_json::from_slice(&bytes)?), cas),
            Some((_, cas)) => (None, cas),
            None => (None, ABSENT),
        };
        let next = change(current);
        match set(key, &next, Some(cas)) {
            Ok(()) => return Ok(next),
            Err(SharedError::Host(Status::CasMismatch)) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(SharedError::Contended { attempts: retries + 1 })
}

/// [`update`] on raw bytes: `change` gets the current bytes (`None` when never set).
///
/// ```no_run
/// let next = weir_sdk::shared::update_bytes("flag", 2, |_| b"on".to_vec());
/// ```
pub fn update_bytes<F>(key: &str, retries: u32, mut change: F) -> Result<Vec<u8>, SharedError>
where
    F: FnMut(Option<&[u8]>) -> Vec<u8>,
{
    for _ in 0..=retries {
        let current = get_bytes(key)?;
        let next = change(current.as_ref().map(|(bytes, _)| bytes.as_slice()));
        match set_bytes(key, &next, Some(current.map_or(ABSENT, |(_, cas)| cas))) {
            Ok(()) => return Ok(next),
            Err(Status::CasMismatch) => continue,
            Err(status) => return Err(SharedError::Host(status)),
        }
    }
    Err(SharedError::Contended { attempts: retries + 1 })
}
