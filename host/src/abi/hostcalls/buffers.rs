//! Buffers: `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`, and the ABI
//! 0.1.0 `proxy_get_configuration`.

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use std::sync::Arc;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{BufferType, Status};

/// The bytes of a buffer visible in the current callback.
fn buffer(state: &VmState, kind: BufferType) -> Result<Arc<[u8]>, Status> {
    match kind {
        BufferType::VmConfiguration => Ok(state.vm_configuration.clone()),
        BufferType::PluginConfiguration => state.plugin_configuration.clone().ok_or(Status::NotFound),
        _ => Err(Status::NotFound),
    }
}

/// `[start, min(start + max, len))`, clamped in 64-bit arithmetic (the SDKs pass `u32::MAX` as max).
fn slice(bytes: &[u8], start: u32, max: u32) -> &[u8] {
    let len = bytes.len() as u64;
    let from = u64::from(start).min(len);
    let to = (u64::from(start) + u64::from(max)).min(len);
    &bytes[from as usize..to as usize]
}

fn get_buffer_bytes(
    c: &mut Caller<'_, VmState>,
    kind: u32,
    start: u32,
    max: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> Result<(), Status> {
    let kind = BufferType::try_from(kind).map_err(|_| Status::BadArgument)?;
    let bytes = buffer(c.data(), kind)?;
    memory::return_bytes(c, slice(&bytes, start, max), ret_ptr, ret_len)
}

fn set_buffer_bytes(c: &mut Caller<'_, VmState>, kind: u32) -> Result<(), Status> {
    let kind = BufferType::try_from(kind).map_err(|_| Status::BadArgument)?;
    match kind {
        // Configurations and callout payloads are read-only.
        BufferType::VmConfiguration
        | BufferType::PluginConfiguration
        | BufferType::HttpCallResponseBody
        | BufferType::GrpcReceiveBuffer
        | BufferType::CallData => Err(Status::BadArgument),
        _ => {
            let _ = c;
            Err(Status::NotFound)
        }
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, VmState>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32| {
            status(get_buffer_bytes(&mut c, kind as u32, start as u32, max as u32, ret_ptr as u32, ret_len as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, VmState>, kind: i32, _start: i32, _size: i32, _ptr: i32, _len: i32| {
            status(set_buffer_bytes(&mut c, kind as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: Caller<'_, VmState>, kind: i32, ret_len: i32, ret_flags: i32| {
            let r = BufferType::try_from(kind as u32)
                .map_err(|_| Status::BadArgument)
                .and_then(|k| buffer(c.data(), k))
                .and_then(|b| {
                    memory::write_u32(&mut c, ret_len as u32, b.len() as u32)?;
                    memory::write_u32(&mut c, ret_flags as u32, 0)?;
                    Ok(())
                });
            status(r)
        },
    )?;
    linker.func_wrap("env", "proxy_get_configuration", |mut c: Caller<'_, VmState>, ret_ptr: i32, ret_len: i32| {
        // ABI 0.1.0: the plugin configuration during on_configure, the VM configuration otherwise.
        let bytes = c.data().plugin_configuration.clone().unwrap_or_else(|| c.data().vm_configuration.clone());
        status(memory::return_bytes(&mut c, &bytes, ret_ptr as u32, ret_len as u32))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slice;

    #[test]
    fn slices_clamp_instead_of_failing() {
        let b = b"hello";
        for (start, max, want) in
            [(0, u32::MAX, &b"hello"[..]), (1, 2, b"el"), (5, 1, b""), (9, 1, b""), (u32::MAX, u32::MAX, b"")]
        {
            assert_eq!(slice(b, start, max), want, "start {start} max {max}");
        }
    }
}
