//! Capability restriction (ABI §5.13, Envoy's `capability_restriction_config`): the names an attachment's
//! `"capabilities"` allow-list may hold, and the stubs that replace every import it leaves out.
//!
//! - A name is a proxy-wasm hostcall (`proxy_log`), a WASI preview-1 function (`fd_write`, for both
//!   `wasi_snapshot_preview1` and `wasi_unstable`), or a module callback (`proxy_on_request_headers`).
//! - An import not on the list is linked to a stub: a hostcall stub logs once (per attachment set and
//!   import) and returns `INTERNAL_FAILURE` (10); a WASI stub returns errno 76 (`NOTCAPABLE`).
//! - A callback not on the list is treated as absent (never called; Weir does what it does for a module that
//!   does not export it).
//! - Never restricted, as in cpp-host: the allocator (`proxy_on_memory_allocate` / `malloc`), the start
//!   functions (`_initialize`, `main`, `_start`), the ABI version marker and the two Emscripten helpers
//!   (`emscripten_notify_memory_growth`, `pthread_equal`).

use crate::abi::state::VmState;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wasmtime::{Caller, ExternType, FuncType, Linker, Module, Val, ValType};
use weir_sdk::abi::Status;

/// Every `env` hostcall Weir links (ABI 0.2.1, 0.2.0 and 0.1.0).
pub const HOSTCALLS: &[&str] = &[
    "proxy_add_header_map_value",
    "proxy_call_foreign_function",
    "proxy_clear_route_cache",
    "proxy_close_stream",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_continue_stream",
    "proxy_define_metric",
    "proxy_dequeue_shared_queue",
    "proxy_done",
    "proxy_enqueue_shared_queue",
    "proxy_get_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_get_configuration",
    "proxy_get_current_time_nanoseconds",
    "proxy_get_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_header_map_value",
    "proxy_get_log_level",
    "proxy_get_metric",
    "proxy_get_property",
    "proxy_get_shared_data",
    "proxy_get_status",
    "proxy_grpc_call",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_grpc_send",
    "proxy_grpc_stream",
    "proxy_http_call",
    "proxy_increment_metric",
    "proxy_log",
    "proxy_record_metric",
    "proxy_register_shared_queue",
    "proxy_remove_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_resolve_shared_queue",
    "proxy_send_local_response",
    "proxy_set_buffer_bytes",
    "proxy_set_effective_context",
    "proxy_set_header_map_pairs",
    "proxy_set_property",
    "proxy_set_shared_data",
    "proxy_set_tick_period_milliseconds",
];

/// Every WASI preview-1 function Weir links.
pub const WASI: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "random_get",
    "sched_yield",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// Every module callback (export) the ABI defines, whether or not Weir calls it yet.
pub const CALLBACKS: &[&str] = &[
    "proxy_on_configure",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_done",
    "proxy_on_downstream_connection_close",
    "proxy_on_downstream_data",
    "proxy_on_foreign_function",
    "proxy_on_grpc_close",
    "proxy_on_grpc_receive",
    "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_http_call_response",
    "proxy_on_log",
    "proxy_on_new_connection",
    "proxy_on_queue_ready",
    "proxy_on_request_body",
    "proxy_on_request_headers",
    "proxy_on_request_metadata",
    "proxy_on_request_trailers",
    "proxy_on_response_body",
    "proxy_on_response_headers",
    "proxy_on_response_metadata",
    "proxy_on_response_trailers",
    "proxy_on_tick",
    "proxy_on_upstream_connection_close",
    "proxy_on_upstream_data",
    "proxy_on_vm_start",
];

/// WASI's errno for an operation the capabilities do not allow.
pub const NOTCAPABLE: i32 = 76;

/// Whether `name` is a capability an allow-list may hold.
pub fn is_known(name: &str) -> bool {
    [HOSTCALLS, WASI, CALLBACKS].iter().any(|list| list.contains(&name))
}

/// Every capability name, for suggestions.
pub fn all() -> impl Iterator<Item = &'static str> {
    HOSTCALLS.iter().chain(WASI).chain(CALLBACKS).copied()
}

/// An allow-list: the capability names an attachment may use, sorted and unique.
pub type Allowed = Arc<BTreeSet<String>>;

/// Whether the imports of `module` from `from` are capabilities (`env` hostcalls named `proxy_*`, WASI).
fn restrictable(from: &str, name: &str) -> Option<bool> {
    match from {
        "env" if name.starts_with("proxy_") => Some(false),
        "wasi_snapshot_preview1" | "wasi_unstable" => Some(true),
        _ => None,
    }
}

/// `linker` with every import of `module` that `allowed` leaves out replaced by a stub (see the module
/// docs). `linker` itself is left as it is.
pub fn restricted_linker(
    linker: &Linker<VmState>,
    module: &Module,
    allowed: &Allowed,
) -> wasmtime::Result<Linker<VmState>> {
    let mut restricted = linker.clone();
    restricted.allow_shadowing(true);
    for import in module.imports() {
        let (from, name) = (import.module(), import.name());
        let (Some(wasi), ExternType::Func(ty)) = (restrictable(from, name), import.ty()) else { continue };
        if allowed.contains(name) || !(WASI.contains(&name) || HOSTCALLS.contains(&name)) {
            continue; // allowed, or unknown: the plain linker reports an unknown import
        }
        let code = if wasi { NOTCAPABLE } else { Status::InternalFailure as i32 };
        restricted.func_new(from, name, ty.clone(), stub(&ty, name, wasi, code))?;
    }
    Ok(restricted)
}

/// A stub for a denied import: writes `code` as its i32 result (if it has one), logging the first call.
fn stub(
    ty: &FuncType,
    name: &str,
    wasi: bool,
    code: i32,
) -> impl Fn(Caller<'_, VmState>, &[Val], &mut [Val]) -> wasmtime::Result<()> + Send + Sync + 'static {
    let returns_i32 = ty.results().len() == 1 && matches!(ty.results().next(), Some(ValType::I32));
    let name = name.to_string();
    let logged = Arc::new(AtomicBool::new(false));
    move |c: Caller<'_, VmState>, _: &[Val], results: &mut [Val]| {
        if !wasi && !logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "weir::filter",
                filter = %c.data().log_tag,
                "the filter called {name}, which its capabilities do not allow; it gets INTERNAL_FAILURE (10) \
                 (logged once)"
            );
        }
        if returns_i32 {
            if let Some(r) = results.first_mut() {
                *r = Val::I32(code);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::state::VmIdentity;
    use std::collections::BTreeSet;
    use wasmtime::{Engine, Store, StoreLimits};

    fn linker(engine: &Engine) -> Linker<VmState> {
        let mut linker = Linker::new(engine);
        crate::abi::add_to_linker(&mut linker).expect("linker");
        linker
    }

    fn store(engine: &Engine) -> Store<VmState> {
        let identity = VmIdentity { module: Arc::from("test"), digest: Arc::from("0"), worker: 0 };
        let host = super::super::testkit::host();
        Store::new(engine, VmState::new(identity, host, Arc::from(""), StoreLimits::default(), Arc::from(&b""[..])))
    }

    #[test]
    fn the_lists_name_exactly_what_the_linker_defines() {
        let engine = Engine::default();
        let linker = linker(&engine);
        let mut store = store(&engine);
        let (mut env, mut wasi, mut unstable) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (from, name, _) in linker.iter(&mut store) {
            match from {
                "env" if name.starts_with("proxy_") => env.insert(name.to_string()),
                "wasi_snapshot_preview1" => wasi.insert(name.to_string()),
                "wasi_unstable" => unstable.insert(name.to_string()),
                _ => true,
            };
        }
        let set = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(env, set(HOSTCALLS));
        assert_eq!(wasi, set(WASI));
        assert_eq!(unstable, set(WASI));
        assert!(CALLBACKS.iter().all(|c| c.starts_with("proxy_on_") && !HOSTCALLS.contains(c)));
        assert!(is_known("proxy_log") && is_known("fd_write") && is_known("proxy_on_log"));
        assert!(!is_known("proxy_on_memory_allocate") && !is_known("malloc") && !is_known("log"));
    }

    #[test]
    fn denied_imports_answer_internal_failure_or_notcapable() {
        let wat = r#"(module
            (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
            (import "env" "proxy_get_log_level" (func $level (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
            (import "wasi_unstable" "sched_yield" (func $yield (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (func (export "log") (result i32) i32.const 2 i32.const 0 i32.const 0 call $log)
            (func (export "level") (result i32) i32.const 0 call $level)
            (func (export "random") (result i32) i32.const 0 i32.const 4 call $random)
            (func (export "yield") (result i32) call $yield)
            (func (export "exit") (result i32) i32.const 3 call $exit i32.const 7))"#;
        let engine = Engine::default();
        let module = Module::new(&engine, wat).expect("module");
        let allowed: Allowed = Arc::new(["proxy_get_log_level", "sched_yield"].iter().map(|s| s.to_string()).collect());
        let restricted = restricted_linker(&linker(&engine), &module, &allowed).expect("restricted");
        let mut store = store(&engine);
        let instance = restricted.instantiate(&mut store, &module).expect("instantiate");
        let mut call = |name: &str| {
            let f = instance.get_typed_func::<(), i32>(&mut store, name).expect(name);
            f.call(&mut store, ()).expect(name)
        };
        // (export, the status its import answered)
        for (name, expect) in [("log", 10), ("level", 0), ("random", NOTCAPABLE), ("yield", 0), ("exit", 7)] {
            assert_eq!(call(name), expect, "{name}");
        }
        // The shared linker is untouched: proc_exit there still ends the guest.
        let mut store = self::store(&engine);
        let instance = linker(&engine).instantiate(&mut store, &module).expect("instantiate");
        let exit = instance.get_typed_func::<(), i32>(&mut store, "exit").expect("exit");
        assert!(exit.call(&mut store, ()).is_err(), "proc_exit ends the guest");
        let log = instance.get_typed_func::<(), i32>(&mut store, "log").expect("log");
        assert_eq!(log.call(&mut store, ()).ok(), Some(0));
    }
}
