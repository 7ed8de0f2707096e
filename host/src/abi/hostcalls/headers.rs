//! Header and trailer maps: `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_get_header_map_size`, `proxy_get_header_map_value`, `proxy_add_header_map_value`,
//! `proxy_replace_header_map_value`, `proxy_remove_header_map_value`.
//!
//! Request headers are writable in the request-headers phase and stay readable (read-only) until the
//! stream ends; response headers likewise from the response-headers phase. Envoy drops request headers
//! once they continue, which makes a Rust filter reading them in the response phase panic; keeping them
//! readable is the friendlier choice and no filter depends on the failure.

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use crate::abi::stream::{self, Pairs, Phase, StreamData};
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{encode_pairs, MapType, Status};

/// The map a call refers to, for reading.
fn map(stream: &StreamData, kind: MapType) -> Option<&Pairs> {
    match kind {
        MapType::HttpRequestHeaders => Some(&stream.request_headers),
        MapType::HttpResponseHeaders if stream.phase >= Phase::ResponseHeaders => Some(&stream.response_headers),
        _ => None,
    }
}

/// The map a call refers to, for writing: only in its own phase.
fn map_mut(stream: &mut StreamData, kind: MapType) -> Result<&mut Pairs, Status> {
    match (kind, stream.phase) {
        (MapType::HttpRequestHeaders, Phase::RequestHeaders) => Ok(&mut stream.request_headers),
        (MapType::HttpResponseHeaders, Phase::ResponseHeaders) => Ok(&mut stream.response_headers),
        _ => Err(Status::BadArgument),
    }
}

fn kind(raw: i32) -> Result<MapType, Status> {
    MapType::try_from(raw as u32).map_err(|_| Status::BadArgument)
}

/// Maps 6 and 7: the callout answer, only during `proxy_on_http_call_response`.
fn callout_map(state: &VmState, kind: MapType) -> Option<Option<&Pairs>> {
    let response = state.callouts.response.as_ref();
    match kind {
        MapType::HttpCallResponseHeaders => Some(response.map(|r| &r.headers)),
        MapType::HttpCallResponseTrailers => Some(response.map(|r| &r.trailers)),
        _ => None,
    }
}

fn get_pairs(c: &mut Caller<'_, VmState>, raw: i32, ret_ptr: u32, ret_len: u32) -> Result<(), Status> {
    let kind = kind(raw)?;
    if let Some(map) = callout_map(c.data(), kind) {
        let bytes = map.map(|m| encode_pairs(m)).unwrap_or_default();
        return memory::return_bytes(c, &bytes, ret_ptr, ret_len);
    }
    let bytes = match c.data_mut().acting_stream() {
        Some(s) => map(s, kind).map(|m| encode_pairs(m)).unwrap_or_default(),
        None => Vec::new(),
    };
    memory::return_bytes(c, &bytes, ret_ptr, ret_len)
}

fn set_pairs(c: &mut Caller<'_, VmState>, raw: i32, ptr: u32, len: u32) -> Result<(), Status> {
    let kind = kind(raw)?;
    let bytes = memory::read(c, ptr, len)?;
    let pairs = stream::pairs_from_guest(&bytes).map_err(|_| Status::BadArgument)?;
    let stream = c.data_mut().acting_stream().ok_or(Status::BadArgument)?;
    *map_mut(stream, kind)? = pairs;
    Ok(())
}

fn get_value(
    c: &mut Caller<'_, VmState>,
    raw: i32,
    key_ptr: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> Result<(), Status> {
    let kind = kind(raw)?;
    let key = memory::read(c, key_ptr, key_len)?;
    if let Some(map) = callout_map(c.data(), kind) {
        let value = stream::first_value(map.ok_or(Status::BadArgument)?, &key).ok_or(Status::NotFound)?.to_vec();
        return memory::return_bytes(c, &value, ret_ptr, ret_len);
    }
    let value = {
        let stream = c.data_mut().acting_stream().ok_or(Status::BadArgument)?;
        let m = map(stream, kind).ok_or(Status::BadArgument)?;
        stream::first_value(m, &key).ok_or(Status::NotFound)?.to_vec()
    };
    memory::return_bytes(c, &value, ret_ptr, ret_len)
}

enum Edit {
    Add,
    Replace,
    Remove,
}

fn edit(c: &mut Caller<'_, VmState>, raw: i32, key: (u32, u32), value: (u32, u32), how: Edit) -> Result<(), Status> {
    let kind = kind(raw)?;
    let key = memory::read(c, key.0, key.1)?.to_ascii_lowercase();
    let value = memory::read(c, value.0, value.1)?;
    let stream = c.data_mut().acting_stream().ok_or(Status::BadArgument)?;
    let m = map_mut(stream, kind)?;
    match how {
        Edit::Add => m.push((key, value)),
        Edit::Replace => stream::replace_value(m, &key, &value),
        Edit::Remove => stream::remove_values(m, &key),
    }
    Ok(())
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, VmState>, kind: i32, rp: i32, rl: i32| status(get_pairs(&mut c, kind, rp as u32, rl as u32)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Caller<'_, VmState>, kind: i32, p: i32, l: i32| status(set_pairs(&mut c, kind, p as u32, l as u32)),
    )?;
    linker.func_wrap("env", "proxy_get_header_map_size", |mut c: Caller<'_, VmState>, raw: i32, ret: i32| {
        let size = kind(raw).and_then(|k| {
            let s = c.data_mut().acting_stream().ok_or(Status::BadArgument)?;
            map(s, k).map(|m| m.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()).ok_or(Status::BadArgument)
        });
        status(size.and_then(|n| memory::write_u32(&mut c, ret as u32, n as u32).map_err(Status::from)))
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, VmState>, kind: i32, kp: i32, kl: i32, rp: i32, rl: i32| {
            status(get_value(&mut c, kind, kp as u32, kl as u32, rp as u32, rl as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Caller<'_, VmState>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            status(edit(&mut c, kind, (kp as u32, kl as u32), (vp as u32, vl as u32), Edit::Add))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, VmState>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            status(edit(&mut c, kind, (kp as u32, kl as u32), (vp as u32, vl as u32), Edit::Replace))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, VmState>, kind: i32, kp: i32, kl: i32| {
            status(edit(&mut c, kind, (kp as u32, kl as u32), (0, 0), Edit::Remove))
        },
    )?;
    Ok(())
}
