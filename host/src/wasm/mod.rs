//! The WebAssembly runtime: one wasmtime engine and linker for the process, modules compiled once per
//! digest, and VMs (one per module per worker) that run proxy-wasm lifecycle callbacks under limits.

mod deadline;
mod engine;
mod module;
mod vm;

pub use engine::{Limits, WasmRuntime};
pub use module::{LoadError, LoadedModule};
pub use vm::{Outcome, Vm, VmError, Wakeup};

#[cfg(test)]
mod tests;
