//! The counter store: one interface ([`CounterStore`]) so that a store shared by a fleet of gateways (Redis)
//! can sit beside the one in the host's shared data ([`SharedDataStore`]), which every worker of one gateway
//! sees and which outlives VMs (a hot swap of the filter keeps the counts).

use std::fmt;

use weir_sdk::shared::{self, Cas};
use weir_sdk::Status;

use crate::algorithm::{self, Op, Outcome, Policy};

/// Why the store could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The host refused a read or a write (a full store, a denied hostcall, ...).
    Host(Status),
    /// Other writers changed the counter during every attempt.
    Contended {
        /// How many writes were tried.
        attempts: u32,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Host(status) => write!(f, "the host answered {status:?}"),
            StoreError::Contended { attempts } => write!(f, "the counter changed during each of {attempts} attempts"),
        }
    }
}

/// Where counters live. `apply` must be atomic per key: the operation is applied to the value it read, or not
/// at all.
pub trait CounterStore {
    /// Applies `op` to counter `key` under `policy` at `now` (nanoseconds since the epoch).
    fn apply(&self, key: &str, policy: &Policy, op: Op, now: u64) -> Result<Outcome, StoreError>;
}

/// Counters in proxy-wasm shared data, updated with compare-and-swap.
#[derive(Debug, Clone, Copy)]
pub struct SharedDataStore {
    /// Writes retried after a CAS mismatch before giving up.
    pub retries: u32,
}

/// The CAS a write of a key read as absent carries: the host creates a missing key whatever the CAS but refuses
/// a non-zero CAS that does not match an existing key, so a key another worker created meanwhile is not
/// overwritten (as `weir_sdk::shared::update` does).
const ABSENT: Cas = Cas(u32::MAX);

impl CounterStore for SharedDataStore {
    fn apply(&self, key: &str, policy: &Policy, op: Op, now: u64) -> Result<Outcome, StoreError> {
        for _ in 0..=self.retries {
            let current = shared::get_bytes(key).map_err(StoreError::Host)?;
            let (state, cas) = match &current {
                Some((bytes, cas)) => (Some(bytes.as_slice()), *cas),
                None => (None, ABSENT),
            };
            let (next, outcome) = algorithm::apply(policy, state, now, op);
            let Some(next) = next else { return Ok(outcome) };
            match shared::set_bytes(key, &next, Some(cas)) {
                Ok(()) => return Ok(outcome),
                Err(Status::CasMismatch) => continue,
                Err(status) => return Err(StoreError::Host(status)),
            }
        }
        Err(StoreError::Contended { attempts: self.retries + 1 })
    }
}
