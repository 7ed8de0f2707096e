//! The hostcall layer: one safe Rust function per proxy-wasm import, with the same signatures on every target.
//!
//! On `wasm32` the functions are in [`ffi`], the only module of the crate that contains `unsafe`. Everywhere else
//! they are the fake host of [`crate::testing`], so filter logic runs natively in unit tests through exactly the
//! code the `.wasm` runs. The helpers (`http`, `property`, `shared`, ...) call `raw::*` and never know which.
//!
//! Conventions of `raw`: a status other than OK is `Err(status)`; a value the host returns as `(null, 0)` is an
//! empty `Vec`; byte strings are passed as they go on the wire (maps already encoded with [`crate::abi`]).

#[cfg(target_arch = "wasm32")]
pub(crate) mod ffi;

#[cfg(target_arch = "wasm32")]
pub(crate) use ffi as raw;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::hostcalls as raw;

use crate::abi::{LogLevel, Status};

/// Logs, at warn, that the host refused `what`: used by helpers whose failure a filter rarely acts on (a header
/// change, a metric update), so that the refusal is visible without every call returning a `Result`.
#[cold]
pub(crate) fn report(what: &str, status: Status) {
    let message = format!("weir-sdk: {what} failed: {status:?}");
    let _ = raw::log(LogLevel::Warn, message.as_bytes());
}

/// Maps `Err(NotFound)` to `Ok(None)`.
pub(crate) fn found<T>(result: Result<T, Status>) -> Result<Option<T>, Status> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}
