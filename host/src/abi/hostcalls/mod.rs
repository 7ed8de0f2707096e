//! `env.proxy_*`: each import registered under its exact ABI name, calling a Rust function with an
//! idiomatic name. A hostcall never panics on guest input: bad arguments get the ABI's status codes.

mod buffers;
pub mod capabilities;
mod foreign;
mod headers;
mod http_call;
mod log;
mod memoize;
mod metrics;
mod properties;
mod queue;
mod shared_data;
mod stream;
#[cfg(test)]
mod testkit;

use super::state::VmState;
use wasmtime::{Caller, FuncType, Linker, Val, ValType};
use weir_sdk::abi::Status;

/// The status code a hostcall returns.
pub(crate) fn status(r: Result<(), Status>) -> i32 {
    match r {
        Ok(()) => Status::Ok as i32,
        Err(s) => s as i32,
    }
}

/// Hostcalls the runtime does not serve yet, with their parameters (`i`: i32, `I`: i64; every one returns an
/// i32 status). A filter that calls one fails its stream with a trap naming the call; loading still works,
/// because every SDK imports them whether it calls them or not.
const PENDING: &[(&str, &str)] = &[];

/// Registers every `env` import.
pub fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    log::add_to_linker(linker)?;
    buffers::add_to_linker(linker)?;
    headers::add_to_linker(linker)?;
    stream::add_to_linker(linker)?;
    http_call::add_to_linker(linker)?;
    shared_data::add_to_linker(linker)?;
    queue::add_to_linker(linker)?;
    metrics::add_to_linker(linker)?;
    properties::add_to_linker(linker)?;
    foreign::add_to_linker(linker)?;
    // Emscripten-built C++ filters import these two.
    linker.func_wrap("env", "emscripten_notify_memory_growth", |_: Caller<'_, VmState>, _: i32| {})?;
    linker.func_wrap("env", "pthread_equal", |_: Caller<'_, VmState>, a: i32, b: i32| i32::from(a == b))?;
    for (name, params) in PENDING {
        let params = params.chars().map(|c| if c == 'I' { ValType::I64 } else { ValType::I32 });
        let ty = FuncType::new(linker.engine(), params, [ValType::I32]);
        let name: &'static str = name;
        linker.func_new("env", name, ty, move |c: Caller<'_, VmState>, _: &[Val], _: &mut [Val]| {
            Err(wasmtime::Error::msg(format!(
                "filter {} called {name}, which this Weir build does not serve yet",
                c.data().log_tag
            )))
        })?;
    }
    Ok(())
}
