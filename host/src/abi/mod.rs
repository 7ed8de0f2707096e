//! The proxy-wasm ABI on the host side: every `env.proxy_*` import registered under its exact ABI name,
//! each calling a Rust function with an idiomatic name; the WASI preview-1 shim; the checked guest-memory
//! helper. ABI numbers and codecs come from `weir_sdk::abi`, the one definition shared with guests.

pub mod callout;
pub mod header_map;
pub mod hostcalls;
pub mod memo;
pub mod memory;
pub mod shared;
pub mod state;
pub mod stream;
pub mod wasi;

pub use shared::{HostShared, QueueListener};
pub use state::{PluginInfo, VmIdentity, VmState};

use wasmtime::Linker;

/// Registers every hostcall and the WASI shim (under `wasi_snapshot_preview1` and `wasi_unstable`).
pub fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    hostcalls::add_to_linker(linker)?;
    wasi::add_to_linker(linker, "wasi_snapshot_preview1")?;
    wasi::add_to_linker(linker, "wasi_unstable")?;
    Ok(())
}
