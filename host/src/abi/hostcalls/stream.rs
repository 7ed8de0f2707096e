//! Stream control: `proxy_send_local_response`, `proxy_continue_stream`, `proxy_close_stream`, the ABI
//! 0.1.0 `proxy_continue_request` / `proxy_continue_response`, and `proxy_set_effective_context`.
//! Each records what the filter asked for; the host acts on it after the callback returns, never
//! re-entrantly.

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use crate::abi::stream::{pairs_from_guest, LocalResponse};
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{Status, StreamType};

#[allow(clippy::too_many_arguments)]
fn send_local_response(
    c: &mut Caller<'_, VmState>,
    code: u32,
    details: (u32, u32),
    body: (u32, u32),
    headers: (u32, u32),
    grpc_status: i32,
) -> Result<(), Status> {
    let details = memory::read_string(c, details.0, details.1)?;
    let body = memory::read(c, body.0, body.1)?;
    let raw = memory::read(c, headers.0, headers.1)?;
    // Undecodable extra headers are dropped, as cpp-host does.
    let headers = pairs_from_guest(&raw).unwrap_or_default();
    let status_code = if (100..=599).contains(&code) { code as u16 } else { 500 };
    // Outside an HTTP stream (a root context, a tick) Envoy does nothing and returns OK.
    c.data_mut().wakeups_pending = true;
    if let Some(stream) = c.data_mut().acting_stream() {
        // A second local response in one stream is ignored (it crashed Envoy, envoy#23047).
        if stream.local_response.is_none() {
            stream.local_response = Some(LocalResponse {
                status: status_code,
                headers,
                body,
                details,
                grpc_status: u32::try_from(grpc_status).ok().filter(|s| *s <= 16),
            });
        }
    }
    Ok(())
}

fn stream_type(raw: i32) -> Result<StreamType, Status> {
    StreamType::try_from(raw as u32).map_err(|_| Status::BadArgument)
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, VmState>, code: i32, dp: i32, dl: i32, bp: i32, bl: i32, hp: i32, hl: i32, grpc: i32| {
            status(send_local_response(
                &mut c,
                code as u32,
                (dp as u32, dl as u32),
                (bp as u32, bl as u32),
                (hp as u32, hl as u32),
                grpc,
            ))
        },
    )?;
    linker.func_wrap("env", "proxy_continue_stream", |mut c: Caller<'_, VmState>, raw: i32| {
        // Recorded, and applied by the host after the callback returns; resuming a direction that is not
        // paused is a no-op.
        status(stream_type(raw).and_then(|t| {
            c.data_mut().wakeups_pending = true;
            let stream = c.data_mut().acting_stream();
            match (t, stream) {
                (StreamType::HttpRequest, Some(s)) => s.resume_request = true,
                (StreamType::HttpResponse, Some(s)) => s.resume_response = true,
                (StreamType::Upstream, _) => return Err(Status::Unimplemented),
                _ => {}
            }
            Ok(())
        }))
    })?;
    linker.func_wrap("env", "proxy_close_stream", |mut c: Caller<'_, VmState>, raw: i32| {
        status(stream_type(raw).map(|_| {
            c.data_mut().wakeups_pending = true;
            if let Some(s) = c.data_mut().acting_stream() {
                s.close = true;
            }
        }))
    })?;
    linker.func_wrap("env", "proxy_continue_request", |mut c: Caller<'_, VmState>| {
        c.data_mut().wakeups_pending = true;
        if let Some(s) = c.data_mut().acting_stream() {
            s.resume_request = true;
        }
        Status::Ok as i32
    })?;
    linker.func_wrap("env", "proxy_continue_response", |mut c: Caller<'_, VmState>| {
        c.data_mut().wakeups_pending = true;
        if let Some(s) = c.data_mut().acting_stream() {
            s.resume_response = true;
        }
        Status::Ok as i32
    })?;
    linker.func_wrap("env", "proxy_set_effective_context", |mut c: Caller<'_, VmState>, id: i32| {
        let id = id as u32;
        let state = c.data_mut();
        if state.streams.contains_key(&id) || state.roots.contains(&id) {
            state.effective_context = Some(id);
            Status::Ok as i32
        } else {
            Status::BadArgument as i32
        }
    })?;
    Ok(())
}
