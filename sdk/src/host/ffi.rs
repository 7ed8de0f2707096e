//! The proxy-wasm imports (module `env`, ABI 0.2.1) and their safe wrappers: the only `unsafe` code of the crate.
//!
//! Each import is declared with the exact ABI name and a signature of `i32`s (`usize` and `u32` on wasm32) and
//! `i64`s; each wrapper passes Rust slices as `(ptr, len)` and takes ownership of what the host allocated in guest
//! memory through [`allocate`]. Compiled only for `wasm32`; natively `crate::testing::hostcalls` has the same
//! functions.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ptr::null_mut;

use crate::abi::{BufferType, LogLevel, MapType, MetricType, Status, StreamType};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message: *const u8, message_len: usize) -> u32;
    fn proxy_get_log_level(ret_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(ret_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(kind: u32, start: usize, max: usize, ret: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_set_buffer_bytes(kind: u32, start: usize, size: usize, data: *const u8, data_len: usize) -> u32;
    fn proxy_get_header_map_pairs(map: u32, ret: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_set_header_map_pairs(map: u32, data: *const u8, data_len: usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        ret: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
    fn proxy_add_header_map_value(map: u32, key: *const u8, key_len: usize, value: *const u8, len: usize) -> u32;
    fn proxy_replace_header_map_value(map: u32, key: *const u8, key_len: usize, value: *const u8, len: usize) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_len: usize) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    fn proxy_close_stream(stream: u32) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_len: usize,
        body: *const u8,
        body_len: usize,
        headers: *const u8,
        headers_len: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_http_call(
        upstream: *const u8,
        upstream_len: usize,
        headers: *const u8,
        headers_len: usize,
        body: *const u8,
        body_len: usize,
        trailers: *const u8,
        trailers_len: usize,
        timeout_ms: u32,
        ret_token: *mut u32,
    ) -> u32;
    fn proxy_get_status(ret_code: *mut u32, ret_message: *mut *mut u8, ret_message_len: *mut usize) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_len: usize,
        ret: *mut *mut u8,
        ret_len: *mut usize,
        ret_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(key: *const u8, key_len: usize, value: *const u8, len: usize, cas: u32) -> u32;
    fn proxy_register_shared_queue(name: *const u8, name_len: usize, ret_id: *mut u32) -> u32;
    fn proxy_resolve_shared_queue(
        vm_id: *const u8,
        vm_id_len: usize,
        name: *const u8,
        name_len: usize,
        ret_id: *mut u32,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue: u32, value: *const u8, len: usize) -> u32;
    fn proxy_dequeue_shared_queue(queue: u32, ret: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_len: usize, ret_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric: u32, delta: i64) -> u32;
    fn proxy_record_metric(metric: u32, value: u64) -> u32;
    fn proxy_get_metric(metric: u32, ret_value: *mut u64) -> u32;
    fn proxy_get_property(path: *const u8, path_len: usize, ret: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_set_property(path: *const u8, path_len: usize, value: *const u8, len: usize) -> u32;
    fn proxy_set_effective_context(context: u32) -> u32;
    fn proxy_done() -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_len: usize,
        args: *const u8,
        args_len: usize,
        ret: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
}

extern "C" {
    /// Synthesized by `wasm-ld`: runs the static constructors (wasi-libc's among them). A `cdylib` has no crt1
    /// to call it, so `_initialize` does, as the crates.io SDK does.
    fn __wasm_call_ctors();
}

/// `proxy_on_memory_allocate`: `size` bytes the host fills and hands back to the guest, which frees them.
///
/// A boxed slice has capacity exactly `size`, which is what [`take`] assumes when it rebuilds the `Vec`.
pub fn allocate(size: usize) -> *mut u8 {
    let slice: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(size);
    Box::into_raw(slice).cast::<u8>()
}

/// Runs the static constructors; called once, first thing in `_initialize`.
pub fn call_ctors() {
    // SAFETY: `__wasm_call_ctors` takes no arguments and is called exactly once, before any other guest code.
    unsafe { __wasm_call_ctors() }
}

/// OK is `Ok(())`; any other status is `Err`, and a value no `Status` names is `InternalFailure`.
fn check(raw: u32) -> Result<(), Status> {
    match Status::try_from(raw) {
        Ok(Status::Ok) => Ok(()),
        Ok(status) => Err(status),
        Err(_) => Err(Status::InternalFailure),
    }
}

/// Takes ownership of `len` bytes the host wrote at `ptr` (allocated through [`allocate`]); `null` is empty.
fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
    if ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the host allocated exactly `len` bytes at `ptr` with `proxy_on_memory_allocate` (a boxed slice, so
    // capacity == len), initialised all of them, and handed ownership to the guest; nothing else refers to them.
    unsafe { Vec::from_raw_parts(ptr, len, len) }
}

/// Calls a hostcall that returns one host-allocated value through `(ret, ret_len)`.
fn returned(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Vec<u8>, Status> {
    let mut ptr = null_mut();
    let mut len = 0;
    check(call(&mut ptr, &mut len))?;
    Ok(take(ptr, len))
}

// Every `unsafe` block below calls one import with pointers into live Rust values: input slices stay borrowed
// for the duration of the call (the host copies them before returning) and out-pointers point to locals the host
// writes before returning. The host checks every `(ptr, len)` against guest memory.

/// `proxy_log`.
pub fn log(level: LogLevel, message: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `message` is borrowed for the call.
    check(unsafe { proxy_log(level.as_u32(), message.as_ptr(), message.len()) })
}

/// `proxy_get_log_level`, clamped to the levels the ABI names.
pub fn get_log_level() -> Result<LogLevel, Status> {
    let mut level = 0;
    // SAFETY: see above; `level` is a local the host writes.
    check(unsafe { proxy_get_log_level(&mut level) })?;
    Ok(LogLevel::clamp(level))
}

/// `proxy_get_current_time_nanoseconds`.
pub fn get_current_time_nanoseconds() -> Result<u64, Status> {
    let mut time = 0;
    // SAFETY: see above; `time` is a local the host writes.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut time) })?;
    Ok(time)
}

/// `proxy_set_tick_period_milliseconds`.
pub fn set_tick_period_milliseconds(period: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// `proxy_get_buffer_bytes`.
pub fn get_buffer_bytes(buffer: BufferType, start: usize, max_size: usize) -> Result<Vec<u8>, Status> {
    // SAFETY: see above; the out-pointers are locals of `returned`.
    returned(|ret, len| unsafe { proxy_get_buffer_bytes(buffer.as_u32(), start, max_size, ret, len) })
}

/// `proxy_set_buffer_bytes`.
pub fn set_buffer_bytes(buffer: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `value` is borrowed for the call.
    check(unsafe { proxy_set_buffer_bytes(buffer.as_u32(), start, size, value.as_ptr(), value.len()) })
}

/// `proxy_get_header_map_pairs`: the encoded map.
pub fn get_header_map_pairs(map: MapType) -> Result<Vec<u8>, Status> {
    // SAFETY: see above; the out-pointers are locals of `returned`.
    returned(|ret, len| unsafe { proxy_get_header_map_pairs(map.as_u32(), ret, len) })
}

/// `proxy_set_header_map_pairs`, from an encoded map.
pub fn set_header_map_pairs(map: MapType, pairs: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `pairs` is borrowed for the call.
    check(unsafe { proxy_set_header_map_pairs(map.as_u32(), pairs.as_ptr(), pairs.len()) })
}

/// `proxy_get_header_map_value`.
pub fn get_header_map_value(map: MapType, key: &[u8]) -> Result<Vec<u8>, Status> {
    // SAFETY: see above; `key` is borrowed, the out-pointers are locals of `returned`.
    returned(|ret, len| unsafe { proxy_get_header_map_value(map.as_u32(), key.as_ptr(), key.len(), ret, len) })
}

/// `proxy_add_header_map_value`.
pub fn add_header_map_value(map: MapType, key: &[u8], value: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `key` and `value` are borrowed for the call.
    check(unsafe { proxy_add_header_map_value(map.as_u32(), key.as_ptr(), key.len(), value.as_ptr(), value.len()) })
}

/// `proxy_replace_header_map_value`.
pub fn replace_header_map_value(map: MapType, key: &[u8], value: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `key` and `value` are borrowed for the call.
    check(unsafe { proxy_replace_header_map_value(map.as_u32(), key.as_ptr(), key.len(), value.as_ptr(), value.len()) })
}

/// `proxy_remove_header_map_value`.
pub fn remove_header_map_value(map: MapType, key: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `key` is borrowed for the call.
    check(unsafe { proxy_remove_header_map_value(map.as_u32(), key.as_ptr(), key.len()) })
}

/// `proxy_continue_stream`.
pub fn continue_stream(stream: StreamType) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_continue_stream(stream.as_u32()) })
}

/// `proxy_close_stream`.
pub fn close_stream(stream: StreamType) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_close_stream(stream.as_u32()) })
}

/// `proxy_send_local_response`; `headers` encoded, `grpc_status` -1 for none.
pub fn send_local_response(
    status: u32,
    details: &[u8],
    body: &[u8],
    headers: &[u8],
    grpc_status: i32,
) -> Result<(), Status> {
    // SAFETY: see above; the three slices are borrowed for the call.
    check(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            grpc_status,
        )
    })
}

/// `proxy_http_call`: the token.
pub fn http_call(
    upstream: &[u8],
    headers: &[u8],
    body: &[u8],
    trailers: &[u8],
    timeout_ms: u32,
) -> Result<u32, Status> {
    let mut token = 0;
    // SAFETY: see above; the slices are borrowed and `token` is a local the host writes.
    check(unsafe {
        proxy_http_call(
            upstream.as_ptr(),
            upstream.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// `proxy_get_status`: the code and message of the last callout event.
pub fn get_status() -> Result<(u32, Vec<u8>), Status> {
    let mut code = 0;
    // SAFETY: see above; `code` and the out-pointers of `returned` are locals the host writes.
    let message = returned(|ret, len| unsafe { proxy_get_status(&mut code, ret, len) })?;
    Ok((code, message))
}

/// `proxy_get_shared_data`: the value and its CAS.
pub fn get_shared_data(key: &[u8]) -> Result<(Vec<u8>, u32), Status> {
    let mut cas = 0;
    // SAFETY: see above; `key` is borrowed, `cas` and the out-pointers of `returned` are locals the host writes.
    let value = returned(|ret, len| unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), ret, len, &mut cas) })?;
    Ok((value, cas))
}

/// `proxy_set_shared_data`; `cas` 0 stores unconditionally.
pub fn set_shared_data(key: &[u8], value: &[u8], cas: u32) -> Result<(), Status> {
    // SAFETY: see above; `key` and `value` are borrowed for the call.
    check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// `proxy_register_shared_queue`: the queue id.
pub fn register_shared_queue(name: &[u8]) -> Result<u32, Status> {
    let mut id = 0;
    // SAFETY: see above; `name` is borrowed and `id` is a local the host writes.
    check(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// `proxy_resolve_shared_queue`: the queue id.
pub fn resolve_shared_queue(vm_id: &[u8], name: &[u8]) -> Result<u32, Status> {
    let mut id = 0;
    // SAFETY: see above; `vm_id` and `name` are borrowed and `id` is a local the host writes.
    check(unsafe { proxy_resolve_shared_queue(vm_id.as_ptr(), vm_id.len(), name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// `proxy_enqueue_shared_queue`.
pub fn enqueue_shared_queue(queue: u32, value: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `value` is borrowed for the call.
    check(unsafe { proxy_enqueue_shared_queue(queue, value.as_ptr(), value.len()) })
}

/// `proxy_dequeue_shared_queue`.
pub fn dequeue_shared_queue(queue: u32) -> Result<Vec<u8>, Status> {
    // SAFETY: see above; the out-pointers are locals of `returned`.
    returned(|ret, len| unsafe { proxy_dequeue_shared_queue(queue, ret, len) })
}

/// `proxy_define_metric`: the metric id.
pub fn define_metric(kind: MetricType, name: &[u8]) -> Result<u32, Status> {
    let mut id = 0;
    // SAFETY: see above; `name` is borrowed and `id` is a local the host writes.
    check(unsafe { proxy_define_metric(kind.as_u32(), name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// `proxy_increment_metric`.
pub fn increment_metric(metric: u32, delta: i64) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_increment_metric(metric, delta) })
}

/// `proxy_record_metric`.
pub fn record_metric(metric: u32, value: u64) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_record_metric(metric, value) })
}

/// `proxy_get_metric`.
pub fn get_metric(metric: u32) -> Result<u64, Status> {
    let mut value = 0;
    // SAFETY: see above; `value` is a local the host writes.
    check(unsafe { proxy_get_metric(metric, &mut value) })?;
    Ok(value)
}

/// `proxy_get_property`, with an encoded path.
pub fn get_property(path: &[u8]) -> Result<Vec<u8>, Status> {
    // SAFETY: see above; `path` is borrowed, the out-pointers are locals of `returned`.
    returned(|ret, len| unsafe { proxy_get_property(path.as_ptr(), path.len(), ret, len) })
}

/// `proxy_set_property`, with an encoded path.
pub fn set_property(path: &[u8], value: &[u8]) -> Result<(), Status> {
    // SAFETY: see above; `path` and `value` are borrowed for the call.
    check(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
}

/// `proxy_set_effective_context`.
pub fn set_effective_context(context: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_effective_context(context) })
}

/// `proxy_done`.
pub fn done() -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_done() })
}

/// `proxy_call_foreign_function`: the result bytes.
pub fn call_foreign_function(name: &[u8], args: &[u8]) -> Result<Vec<u8>, Status> {
    // SAFETY: see above; `name` and `args` are borrowed, the out-pointers are locals of `returned`.
    returned(|ret, len| unsafe {
        proxy_call_foreign_function(name.as_ptr(), name.len(), args.as_ptr(), args.len(), ret, len)
    })
}
