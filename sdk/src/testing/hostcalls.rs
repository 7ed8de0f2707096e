//! The hostcalls, natively: the same functions as `host/ffi.rs`, served from this thread's [`FakeState`].
//!
//! They follow Weir's host where it matters to a filter (statuses, CAS, callout tokens stepping by 4, metric ids,
//! queue notifications, the buffer splice, header maps encoded with [`crate::abi`]) and do not enforce which map
//! or buffer a phase may touch, except the callout answer (maps 6 and 7, buffer 4), which exists only while it is
//! delivered. Shared data, queues and metrics are in `global`. Every call is recorded by name ([`FakeHost::calls`](super::FakeHost::calls)).

mod global;

pub use global::*;

use super::state::{lossy, with, Callout, FakeState, LocalResponse, LogEntry, Pairs};
use crate::abi::{
    decode_pairs, encode_i64, encode_pairs, split_path, BufferType, LogLevel, MapType, Status, StreamType,
};

/// Runs `f` on the state after recording the call `name`.
pub(crate) fn call<T>(name: &'static str, f: impl FnOnce(&mut FakeState) -> T) -> T {
    with(|state| {
        state.calls.push(name);
        f(state)
    })
}

fn decode(bytes: &[u8]) -> Result<Pairs, Status> {
    let pairs = decode_pairs(bytes).map_err(|_| Status::BadArgument)?;
    Ok(pairs.into_iter().map(|(k, v)| (lossy(k), v.to_vec())).collect())
}

fn encode(pairs: &Pairs) -> Vec<u8> {
    encode_pairs(pairs)
}

/// `proxy_log`.
pub fn log(level: LogLevel, message: &[u8]) -> Result<(), Status> {
    call("proxy_log", |s| s.logs.push(LogEntry { level, message: lossy(message) }));
    Ok(())
}

/// `proxy_get_log_level`.
pub fn get_log_level() -> Result<LogLevel, Status> {
    Ok(call("proxy_get_log_level", |s| s.log_level))
}

/// `proxy_get_current_time_nanoseconds`.
pub fn get_current_time_nanoseconds() -> Result<u64, Status> {
    Ok(call("proxy_get_current_time_nanoseconds", |s| s.time_nanos))
}

/// `proxy_set_tick_period_milliseconds`.
pub fn set_tick_period_milliseconds(period: u32) -> Result<(), Status> {
    call("proxy_set_tick_period_milliseconds", |s| s.tick_period_ms = period);
    Ok(())
}

/// The body buffer of the target stream.
fn body(state: &mut FakeState, buffer: BufferType) -> Option<&mut Vec<u8>> {
    let stream = state.stream()?;
    match buffer {
        BufferType::HttpRequestBody => Some(&mut stream.request_body),
        BufferType::HttpResponseBody => Some(&mut stream.response_body),
        _ => None,
    }
}

/// `proxy_get_buffer_bytes`.
pub fn get_buffer_bytes(buffer: BufferType, start: usize, max_size: usize) -> Result<Vec<u8>, Status> {
    call("proxy_get_buffer_bytes", |s| {
        let bytes: &[u8] = match buffer {
            BufferType::HttpRequestBody | BufferType::HttpResponseBody => match body(s, buffer) {
                Some(bytes) => bytes,
                None => &[],
            },
            BufferType::HttpCallResponseBody => &s.answer.as_ref().ok_or(Status::NotFound)?.body,
            BufferType::VmConfiguration => &s.vm_configuration,
            BufferType::PluginConfiguration => &s.plugin_configuration,
            _ => return Err(Status::NotFound),
        };
        let start = start.min(bytes.len());
        let end = start.saturating_add(max_size).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    })
}

/// `proxy_set_buffer_bytes`: the general splice, `start` and `size` clamped to the buffer.
pub fn set_buffer_bytes(buffer: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    call("proxy_set_buffer_bytes", |s| {
        let bytes = body(s, buffer).ok_or(Status::BadArgument)?;
        let start = start.min(bytes.len());
        let end = start.saturating_add(size).min(bytes.len());
        bytes.splice(start..end, value.iter().copied());
        Ok(())
    })
}

/// Map `map` of the target stream (0 to 3), or of the callout answer (6, 7).
fn map(state: &mut FakeState, map: MapType) -> Option<&mut Pairs> {
    let index = match map {
        MapType::HttpRequestHeaders => 0,
        MapType::HttpRequestTrailers => 1,
        MapType::HttpResponseHeaders => 2,
        MapType::HttpResponseTrailers => 3,
        MapType::HttpCallResponseHeaders => return state.answer.as_mut().map(|a| &mut a.headers),
        MapType::HttpCallResponseTrailers => return state.answer.as_mut().map(|a| &mut a.trailers),
        _ => return None,
    };
    state.stream().map(|stream| &mut stream.maps[index])
}

/// A map the guest may change: not the callout answer's.
fn writable(state: &mut FakeState, kind: MapType) -> Result<&mut Pairs, Status> {
    match kind {
        MapType::HttpCallResponseHeaders | MapType::HttpCallResponseTrailers => Err(Status::BadArgument),
        _ => map(state, kind).ok_or(Status::BadArgument),
    }
}

fn matches(name: &str, key: &[u8]) -> bool {
    name.as_bytes().eq_ignore_ascii_case(key)
}

/// `proxy_get_header_map_pairs`: an empty map when the map does not exist.
pub fn get_header_map_pairs(kind: MapType) -> Result<Vec<u8>, Status> {
    Ok(call("proxy_get_header_map_pairs", |s| map(s, kind).map(|pairs| encode(pairs)).unwrap_or_default()))
}

/// `proxy_set_header_map_pairs`.
pub fn set_header_map_pairs(kind: MapType, pairs: &[u8]) -> Result<(), Status> {
    call("proxy_set_header_map_pairs", |s| {
        *writable(s, kind)? = decode(pairs)?;
        Ok(())
    })
}

/// `proxy_get_header_map_value`.
pub fn get_header_map_value(kind: MapType, key: &[u8]) -> Result<Vec<u8>, Status> {
    call("proxy_get_header_map_value", |s| {
        let pairs = map(s, kind).ok_or(Status::BadArgument)?;
        pairs.iter().find(|(name, _)| matches(name, key)).map(|(_, value)| value.clone()).ok_or(Status::NotFound)
    })
}

/// `proxy_add_header_map_value`.
pub fn add_header_map_value(kind: MapType, key: &[u8], value: &[u8]) -> Result<(), Status> {
    call("proxy_add_header_map_value", |s| {
        writable(s, kind)?.push((lossy(key), value.to_vec()));
        Ok(())
    })
}

/// `proxy_replace_header_map_value`: the first entry takes the value, later ones go.
pub fn replace_header_map_value(kind: MapType, key: &[u8], value: &[u8]) -> Result<(), Status> {
    call("proxy_replace_header_map_value", |s| {
        let pairs = writable(s, kind)?;
        match pairs.iter().position(|(name, _)| matches(name, key)) {
            Some(first) => {
                pairs[first].1 = value.to_vec();
                let mut index = 0;
                pairs.retain(|(name, _)| {
                    index += 1;
                    index - 1 == first || !matches(name, key)
                });
            }
            None => pairs.push((lossy(key), value.to_vec())),
        }
        Ok(())
    })
}

/// `proxy_remove_header_map_value`.
pub fn remove_header_map_value(kind: MapType, key: &[u8]) -> Result<(), Status> {
    call("proxy_remove_header_map_value", |s| {
        writable(s, kind)?.retain(|(name, _)| !matches(name, key));
        Ok(())
    })
}

/// `proxy_continue_stream`: counted per direction.
pub fn continue_stream(stream: StreamType) -> Result<(), Status> {
    call("proxy_continue_stream", |s| {
        let target = s.stream().ok_or(Status::NotFound)?;
        match stream {
            StreamType::HttpRequest => target.resumed_request += 1,
            StreamType::HttpResponse => target.resumed_response += 1,
            _ => return Err(Status::Unimplemented),
        }
        Ok(())
    })
}

/// `proxy_close_stream`.
pub fn close_stream(_stream: StreamType) -> Result<(), Status> {
    call("proxy_close_stream", |s| {
        s.stream().ok_or(Status::NotFound)?.closed = true;
        Ok(())
    })
}

/// `proxy_send_local_response`: kept on the stream; a second one is ignored, as Weir does.
pub fn send_local_response(
    status: u32,
    details: &[u8],
    body: &[u8],
    headers: &[u8],
    _grpc_status: i32,
) -> Result<(), Status> {
    call("proxy_send_local_response", |s| {
        let headers = decode(headers)?.into_iter().map(|(name, value)| (name, lossy(&value))).collect();
        let status = u16::try_from(status).map_err(|_| Status::BadArgument)?;
        let response = LocalResponse { status, headers, body: body.to_vec(), details: lossy(details) };
        // Outside a stream the host does nothing (as Envoy).
        if let Some(stream) = s.stream() {
            stream.local_response.get_or_insert(response);
        }
        Ok(())
    })
}

/// `proxy_http_call`: tokens 4, 8, 12, ...; `:method`, `:path` and `:authority` are required.
pub fn http_call(
    upstream: &[u8],
    headers: &[u8],
    body: &[u8],
    trailers: &[u8],
    timeout_ms: u32,
) -> Result<u32, Status> {
    call("proxy_http_call", |s| {
        let headers: Vec<(String, String)> = decode(headers)?.into_iter().map(|(k, v)| (k, lossy(&v))).collect();
        let has = |name: &str| headers.iter().any(|(key, _)| key == name);
        if upstream.is_empty() || !has(":method") || !has(":path") || !has(":authority") {
            return Err(Status::BadArgument);
        }
        let trailers = decode(trailers)?.into_iter().map(|(k, v)| (k, lossy(&v))).collect();
        s.next_token += 4;
        let token = s.next_token;
        let callout = Callout {
            token,
            cluster: lossy(upstream),
            headers,
            body: body.to_vec(),
            trailers,
            timeout_ms,
            context: s.target(),
        };
        s.callouts.insert(token, callout);
        Ok(token)
    })
}

/// `proxy_get_status`.
pub fn get_status() -> Result<(u32, Vec<u8>), Status> {
    Ok(call("proxy_get_status", |s| s.status.clone()))
}

/// `proxy_get_property`: the stream's, then the host's, then what the request headers imply.
pub fn get_property(path: &[u8]) -> Result<Vec<u8>, Status> {
    call("proxy_get_property", |s| {
        if let Some(value) = s.stream().and_then(|stream| stream.properties.get(path)) {
            return Ok(value.clone());
        }
        if let Some(value) = s.properties.get(path) {
            return Ok(value.clone());
        }
        derived(s, path).ok_or(Status::NotFound)
    })
}

/// The `request.*` and `response.code` properties, from the stream's headers.
fn derived(state: &mut FakeState, path: &[u8]) -> Option<Vec<u8>> {
    let stream = state.stream()?;
    let header = |map: usize, name: &str| {
        stream.maps[map].iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    };
    let segments = split_path(path);
    match segments.as_slice() {
        [b"request", b"path"] => header(0, ":path"),
        [b"request", b"url_path"] => header(0, ":path").map(|p| p.split(|&b| b == b'?').next().unwrap_or(&[]).to_vec()),
        [b"request", b"query"] => {
            header(0, ":path").and_then(|p| p.iter().position(|&b| b == b'?').map(|at| p[at + 1..].to_vec()))
        }
        [b"request", b"method"] => header(0, ":method"),
        [b"request", b"host"] => header(0, ":authority"),
        [b"request", b"scheme"] => header(0, ":scheme"),
        [b"request", b"id"] => header(0, "x-request-id"),
        [b"request", b"useragent"] => header(0, "user-agent"),
        [b"request", b"headers", name] => header(0, &lossy(name)),
        [b"response", b"headers", name] => header(2, &lossy(name)),
        [b"response", b"code"] => {
            let status = lossy(&header(2, ":status")?);
            Some(encode_i64(status.trim().parse().ok()?).to_vec())
        }
        _ => None,
    }
}

/// `proxy_set_property`: stream-scoped; `NotFound` outside a stream, as Envoy.
pub fn set_property(path: &[u8], value: &[u8]) -> Result<(), Status> {
    call("proxy_set_property", |s| {
        s.stream().ok_or(Status::NotFound)?.properties.insert(path.to_vec(), value.to_vec());
        Ok(())
    })
}

/// `proxy_set_effective_context`.
pub fn set_effective_context(context: u32) -> Result<(), Status> {
    call("proxy_set_effective_context", |s| {
        if !s.streams.contains_key(&context) && !s.roots.contains(&context) {
            return Err(Status::BadArgument);
        }
        s.effective = Some(context);
        Ok(())
    })
}

/// `proxy_done`: OK only while the plugin is stopping (its `on_done` returned `false`).
pub fn done() -> Result<(), Status> {
    call("proxy_done", |s| {
        if !s.stopping {
            return Err(Status::NotFound);
        }
        s.done = true;
        Ok(())
    })
}

/// `proxy_call_foreign_function`: `clear_route_cache` and what the test registered; `NotFound` otherwise.
pub fn call_foreign_function(name: &[u8], args: &[u8]) -> Result<Vec<u8>, Status> {
    let function = call("proxy_call_foreign_function", |s| s.foreign.get(lossy(name).as_str()).cloned());
    match function {
        Some(function) => function(args),
        None if name == b"clear_route_cache" => Ok(Vec::new()),
        None => Err(Status::NotFound),
    }
}
