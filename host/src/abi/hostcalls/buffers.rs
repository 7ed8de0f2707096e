//! Buffers: `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`, and the ABI
//! 0.1.0 `proxy_get_configuration`.

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use crate::abi::stream::Phase;
use std::sync::Arc;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{BufferType, Status};

/// The bytes of a buffer visible in the current callback.
fn buffer(state: &mut VmState, kind: BufferType) -> Result<Arc<[u8]>, Status> {
    match kind {
        BufferType::VmConfiguration => Ok(state.vm_configuration.clone()),
        BufferType::PluginConfiguration => state.plugin_configuration.clone().ok_or(Status::NotFound),
        BufferType::HttpRequestBody | BufferType::HttpResponseBody => {
            let Some(stream) = state.acting_stream() else { return Err(Status::NotFound) };
            // Outside its body callback (and the trailers callback of a filter holding it) a body reads as
            // empty (Envoy drops the pointer after a resume).
            Ok(if body_visible(stream, kind) { Arc::from(stream.body.as_slice()) } else { Arc::from(&[][..]) })
        }
        BufferType::HttpCallResponseBody => {
            state.callouts.response.as_ref().map(|r| Arc::from(r.body.as_slice())).ok_or(Status::NotFound)
        }
        _ => Err(Status::NotFound),
    }
}

/// Whether the body of `kind`'s direction is the acting stream's now: in its body callback, or in its trailers
/// callback while the filter holds the buffered body.
fn body_visible(stream: &crate::abi::stream::StreamData, kind: BufferType) -> bool {
    let (body, trailers) = if kind == BufferType::HttpRequestBody {
        (Phase::RequestBody, Phase::RequestTrailers)
    } else {
        (Phase::ResponseBody, Phase::ResponseTrailers)
    };
    stream.phase == body || (stream.phase == trailers && stream.body_held)
}

/// Replaces `size` bytes at `start` with `data`: `start` past the end appends, `(0, 0)` prepends,
/// `(0, len)` replaces everything. Envoy supports only the two ends; the general splice is a superset.
pub(crate) fn splice(body: &mut Vec<u8>, start: u32, size: u32, data: &[u8]) {
    let len = body.len() as u64;
    let from = u64::from(start).min(len) as usize;
    let to = (u64::from(start) + u64::from(size)).min(len) as usize;
    body.splice(from..to, data.iter().copied());
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
    let bytes = buffer(c.data_mut(), kind)?;
    memory::return_bytes(c, slice(&bytes, start, max), ret_ptr, ret_len)
}

fn set_buffer_bytes(
    c: &mut Caller<'_, VmState>,
    kind: u32,
    start: u32,
    size: u32,
    ptr: u32,
    len: u32,
) -> Result<(), Status> {
    let kind = BufferType::try_from(kind).map_err(|_| Status::BadArgument)?;
    match kind {
        BufferType::HttpRequestBody | BufferType::HttpResponseBody => {}
        // Configurations and callout payloads are read-only.
        BufferType::VmConfiguration
        | BufferType::PluginConfiguration
        | BufferType::HttpCallResponseBody
        | BufferType::GrpcReceiveBuffer
        | BufferType::CallData => return Err(Status::BadArgument),
        _ => return Err(Status::NotFound),
    }
    let data = memory::read(c, ptr, len)?;
    let stream = c.data_mut().acting_stream().ok_or(Status::NotFound)?;
    if !body_visible(stream, kind) {
        return Err(Status::BadArgument); // a body is writable only where it is readable
    }
    splice(&mut stream.body, start, size, &data);
    Ok(())
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
        |mut c: Caller<'_, VmState>, kind: i32, start: i32, size: i32, ptr: i32, len: i32| {
            status(set_buffer_bytes(&mut c, kind as u32, start as u32, size as u32, ptr as u32, len as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: Caller<'_, VmState>, kind: i32, ret_len: i32, ret_flags: i32| {
            let r = BufferType::try_from(kind as u32)
                .map_err(|_| Status::BadArgument)
                .and_then(|k| buffer(c.data_mut(), k))
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
    use super::{slice, splice};

    #[test]
    fn splice_table() {
        for (start, size, data, want) in [
            (0u32, 0u32, &b"<"[..], &b"<hello"[..]),
            (u32::MAX, 0, b">", b"hello>"),
            (5, 0, b"!", b"hello!"),
            (0, u32::MAX, b"bye", b"bye"),
            (0, 5, b"HELLO", b"HELLO"),
            (1, 3, b"ipp", b"hippo"),
        ] {
            let mut body = b"hello".to_vec();
            splice(&mut body, start, size, data);
            assert_eq!(body, want, "start {start} size {size}");
        }
    }

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
