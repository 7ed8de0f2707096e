//! Callouts: `proxy_http_call`, `proxy_get_status`, and the gRPC calls, which answer INTERNAL_FAILURE
//! ("the host could not start the callout": a status every SDK handles) until gRPC callouts exist.
//! Also `proxy_done` (the ABI 0.1.0 `proxy_clear_route_cache` is in `foreign.rs`, with `clear_route_cache`).

use super::status;
use crate::abi::callout::Callout;
use crate::abi::memory;
use crate::abi::state::VmState;
use crate::abi::stream::{first_value, pairs_from_guest};
use std::time::Duration;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::Status;

#[allow(clippy::too_many_arguments)]
fn http_call(
    c: &mut Caller<'_, VmState>,
    upstream: (u32, u32),
    headers: (u32, u32),
    body: (u32, u32),
    trailers: (u32, u32),
    timeout_ms: u32,
    ret_token: u32,
) -> Result<(), Status> {
    let cluster = memory::read_string(c, upstream.0, upstream.1)?;
    let headers = pairs_from_guest(&memory::read(c, headers.0, headers.1)?).map_err(|_| Status::BadArgument)?;
    let body = memory::read(c, body.0, body.1)?;
    let trailers = pairs_from_guest(&memory::read(c, trailers.0, trailers.1)?).map_err(|_| Status::BadArgument)?;
    if trailers.iter().any(|(k, _)| k.first() == Some(&b':')) {
        return Err(Status::BadArgument); // trailers carry no pseudo-headers
    }
    // Checked as cpp-host does: the token pointer must be writable before anything starts.
    memory::write_u32(c, ret_token, 0)?;
    let state = c.data_mut();
    if !state.callouts.clusters.contains(&cluster) {
        tracing::warn!(filter = %state.log_tag, %cluster, "proxy_http_call to an unknown cluster (name a cluster of the configuration, not a URL)");
        return Err(Status::BadArgument);
    }
    if [&b":method"[..], b":path", b":authority"].iter().any(|k| first_value(&headers, k).is_none()) {
        return Err(Status::BadArgument);
    }
    let root = state.acting_root().ok_or(Status::BadArgument)?;
    let token = state.callouts.next_token();
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
    state.callouts.pending.push(Callout { token, root, cluster, headers, body, trailers, timeout });
    memory::write_u32(c, ret_token, token)?;
    Ok(())
}

fn get_status(c: &mut Caller<'_, VmState>, ret_code: u32, ret_ptr: u32, ret_len: u32) -> Result<(), Status> {
    let (code, message) = c.data().callouts.status.clone();
    memory::write_u32(c, ret_code, code)?;
    memory::return_bytes(c, &message, ret_ptr, ret_len)
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_, VmState>,
         up: i32,
         up_len: i32,
         h: i32,
         h_len: i32,
         b: i32,
         b_len: i32,
         t: i32,
         t_len: i32,
         timeout: i32,
         ret: i32| {
            status(http_call(
                &mut c,
                (up as u32, up_len as u32),
                (h as u32, h_len as u32),
                (b as u32, b_len as u32),
                (t as u32, t_len as u32),
                timeout as u32,
                ret as u32,
            ))
        },
    )?;
    linker.func_wrap("env", "proxy_get_status", |mut c: Caller<'_, VmState>, code: i32, p: i32, l: i32| {
        status(get_status(&mut c, code as u32, p as u32, l as u32))
    })?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |_: Caller<'_, VmState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32| { Status::InternalFailure as i32 },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| {
            Status::InternalFailure as i32
        },
    )?;
    linker.func_wrap("env", "proxy_grpc_send", |_: Caller<'_, VmState>, _: i32, _: i32, _: i32, _: i32| {
        Status::NotFound as i32
    })?;
    linker.func_wrap("env", "proxy_grpc_cancel", |_: Caller<'_, VmState>, _: i32| Status::NotFound as i32)?;
    linker.func_wrap("env", "proxy_grpc_close", |_: Caller<'_, VmState>, _: i32| Status::NotFound as i32)?;
    // No root context ever waits after on_done returned false here (roots end with their VM), so there is
    // nothing for proxy_done to finish.
    linker.func_wrap("env", "proxy_done", |_: Caller<'_, VmState>| Status::NotFound as i32)?;
    // Routes are not chosen again after a filter changes the request (documented in docs/compatibility.md).
    Ok(())
}
