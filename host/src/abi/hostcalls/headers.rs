//! Header and trailer maps: `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_get_header_map_size`, `proxy_get_header_map_value`, `proxy_add_header_map_value`,
//! `proxy_replace_header_map_value`, `proxy_remove_header_map_value`.
//!
//! Request headers are writable in the request-headers phase and stay readable (read-only) until the
//! stream ends; response headers likewise from the response-headers phase. Envoy drops request headers
//! once they continue, which makes a Rust filter reading them in the response phase panic; keeping them
//! readable is the friendlier choice and no filter depends on the failure.
//!
//! Trailers (maps 1 and 3) follow Envoy (ABI reference §5.3), with the same friendlier reads:
//!
//! - they exist once they reach the filter (its trailers callback) or once the filter creates them: any
//!   change in the final body callback (`end_of_stream = 1`) of a stream without trailers creates the map,
//!   and the host then sends them;
//! - writable in their own callback and while the stream stays paused from it, and (creating them) in that
//!   final body callback; elsewhere a change gets `BAD_ARGUMENT`;
//! - readable (read-only) from then until the stream ends, except request trailers in `on_log`;
//! - in `on_log`, response trailers read as what was sent (an empty map when there were none), request
//!   trailers as unavailable;
//! - an unavailable map reads as an empty map (pairs), `BAD_ARGUMENT` (value and size), or `NOT_FOUND`
//!   (value, in `on_log`).

use super::status;
use crate::abi::header_map::Headers;
use crate::abi::memory;
use crate::abi::state::VmState;
use crate::abi::stream::{Phase, StreamData};
use std::sync::LazyLock;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{decode_pairs, MapType, Status};

/// What `on_log` reads when the response had no trailers: an empty map.
static NO_TRAILERS: LazyLock<Headers> = LazyLock::new(Headers::default);

/// The map a call refers to, for reading.
fn map(stream: &StreamData, kind: MapType) -> Option<&Headers> {
    let log = stream.phase == Phase::Log;
    match kind {
        MapType::HttpRequestHeaders => Some(&stream.request_headers),
        MapType::HttpResponseHeaders if stream.phase >= Phase::ResponseHeaders => Some(&stream.response_headers),
        MapType::HttpRequestTrailers if !log => stream.request_trailers.as_ref(),
        MapType::HttpResponseTrailers if log => Some(stream.response_trailers.as_ref().unwrap_or(&NO_TRAILERS)),
        MapType::HttpResponseTrailers => stream.response_trailers.as_ref(),
        _ => None,
    }
}

/// The map a call refers to, for writing: only in its own phase (headers also in their body callbacks while
/// the filter holds them, with `allow_on_headers_stop_iteration`); trailers also in the final body callback of
/// their direction, which creates them.
fn map_mut(stream: &mut StreamData, kind: MapType) -> Result<&mut Headers, Status> {
    match (kind, stream.phase) {
        (MapType::HttpRequestHeaders, Phase::RequestHeaders) => Ok(&mut stream.request_headers),
        (MapType::HttpRequestHeaders, Phase::RequestBody) if stream.request_headers_held => {
            Ok(&mut stream.request_headers)
        }
        (MapType::HttpResponseHeaders, Phase::ResponseHeaders) => Ok(&mut stream.response_headers),
        (MapType::HttpResponseHeaders, Phase::ResponseBody) if stream.response_headers_held => {
            Ok(&mut stream.response_headers)
        }
        (MapType::HttpRequestTrailers, Phase::RequestTrailers) => Ok(stream.request_trailers.get_or_insert_default()),
        (MapType::HttpRequestTrailers, Phase::RequestBody) if stream.final_body => {
            Ok(stream.request_trailers.get_or_insert_default())
        }
        (MapType::HttpResponseTrailers, Phase::ResponseTrailers) => {
            Ok(stream.response_trailers.get_or_insert_default())
        }
        (MapType::HttpResponseTrailers, Phase::ResponseBody) if stream.final_body => {
            Ok(stream.response_trailers.get_or_insert_default())
        }
        _ => Err(Status::BadArgument),
    }
}

/// Why a value cannot be read from an unavailable map: `NOT_FOUND` in `on_log` (as Envoy), else
/// `BAD_ARGUMENT`.
fn unavailable(stream: &StreamData) -> Status {
    if stream.phase == Phase::Log {
        Status::NotFound
    } else {
        Status::BadArgument
    }
}

fn kind(raw: i32) -> Result<MapType, Status> {
    MapType::try_from(raw as u32).map_err(|_| Status::BadArgument)
}

/// Maps 6 and 7: the callout answer, only during `proxy_on_http_call_response`.
fn callout_map(state: &VmState, kind: MapType) -> Option<Option<&Headers>> {
    let response = state.callouts.response.as_ref();
    match kind {
        MapType::HttpCallResponseHeaders => Some(response.map(|r| &r.headers)),
        MapType::HttpCallResponseTrailers => Some(response.map(|r| &r.trailers)),
        _ => None,
    }
}

/// The map a read refers to: `Err` when it is unavailable (with the status a value read gets).
fn readable(state: &mut VmState, kind: MapType) -> Result<&Headers, Status> {
    if matches!(kind, MapType::HttpCallResponseHeaders | MapType::HttpCallResponseTrailers) {
        return callout_map(state, kind).flatten().ok_or(Status::BadArgument);
    }
    let stream: &StreamData = state.acting_stream().ok_or(Status::BadArgument)?;
    map(stream, kind).ok_or_else(|| unavailable(stream))
}

fn get_pairs(c: &mut Caller<'_, VmState>, raw: i32, ret_ptr: u32, ret_len: u32) -> Result<(), Status> {
    let kind = kind(raw)?;
    // Serialized straight into the guest's allocation; an unavailable map reads as an empty one.
    let len = readable(c.data_mut(), kind).map_or(0, Headers::encoded_len);
    memory::return_with(c, len, ret_ptr, ret_len, |state, out| readable(state, kind).is_ok_and(|m| m.encode_into(out)))
}

fn set_pairs(c: &mut Caller<'_, VmState>, raw: i32, ptr: u32, len: u32) -> Result<(), Status> {
    let kind = kind(raw)?;
    memory::with_bytes(c, (ptr, len), (0, 0), |bytes, _, state| {
        let pairs = decode_pairs(bytes).map_err(|_| Status::BadArgument)?;
        let stream = state.acting_stream().ok_or(Status::BadArgument)?;
        map_mut(stream, kind)?.set_pairs(pairs);
        Ok(())
    })?
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
    let value = memory::with_bytes(c, (key_ptr, key_len), (0, 0), |key, _, state| {
        readable(state, kind)?.get_value(key).ok_or(Status::NotFound)
    })??;
    memory::return_bytes(c, value.as_ref(), ret_ptr, ret_len)
}

enum Edit {
    Add,
    Replace,
    Remove,
}

fn edit(c: &mut Caller<'_, VmState>, raw: i32, key: (u32, u32), value: (u32, u32), how: Edit) -> Result<(), Status> {
    let kind = kind(raw)?;
    memory::with_bytes(c, key, value, |key, value, state| {
        let stream = state.acting_stream().ok_or(Status::BadArgument)?;
        let m = map_mut(stream, kind)?;
        match how {
            Edit::Add => m.add(key, value),
            Edit::Replace => m.replace(key, value),
            Edit::Remove => m.remove(key),
        }
        Ok(())
    })?
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
            map(s, k).map(Headers::byte_size).ok_or(Status::BadArgument)
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

#[cfg(test)]
mod tests {
    use super::super::testkit::{host, i, Guest, IN, OUT};
    use crate::abi::stream::{Headers, Pairs, Phase, StreamData};
    use weir_sdk::abi::{decode_pairs, Status};

    const CALLS: &[(&str, &str)] = &[
        ("proxy_get_header_map_pairs", "iii"),
        ("proxy_set_header_map_pairs", "iii"),
        ("proxy_get_header_map_size", "ii"),
        ("proxy_get_header_map_value", "iiiii"),
        ("proxy_add_header_map_value", "iiiii"),
        ("proxy_replace_header_map_value", "iiiii"),
        ("proxy_remove_header_map_value", "iii"),
    ];
    const OK: i32 = Status::Ok as i32;
    const BAD: i32 = Status::BadArgument as i32;
    const MISSING: i32 = Status::NotFound as i32;
    const REQ: u32 = 1;
    const RESP: u32 = 3;

    fn p(items: &[(&str, &str)]) -> Pairs {
        items.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    fn map(items: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(items.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
    }

    /// A guest acting on stream 2 in `phase`.
    fn guest(phase: Phase, final_body: bool, request: Option<Headers>, response: Option<Headers>) -> Guest {
        let mut g = Guest::new(CALLS, host(), "vm");
        let state = g.store.data_mut();
        state.roots = vec![1];
        let stream = StreamData {
            root: 1,
            phase,
            final_body,
            request_trailers: request,
            response_trailers: response,
            ..StreamData::default()
        };
        state.streams.insert(2, stream);
        state.current_context = 2;
        g
    }

    fn value(g: &mut Guest, map: u32, key: &str) -> Result<String, i32> {
        let [kp, kl] = g.put(IN, key.as_bytes());
        g.clear_out();
        match g.call("proxy_get_header_map_value", &[i(map), kp, kl, i(OUT), i(OUT + 4)]) {
            OK => Ok(String::from_utf8_lossy(&g.returned()).into_owned()),
            status => Err(status),
        }
    }

    fn pairs(g: &mut Guest, map: u32) -> (i32, Pairs) {
        g.clear_out();
        let status = g.call("proxy_get_header_map_pairs", &[i(map), i(OUT), i(OUT + 4)]);
        let bytes = g.returned();
        let decoded = if bytes.is_empty() { Vec::new() } else { decode_pairs(&bytes).expect("pairs") };
        (status, decoded.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect())
    }

    fn size(g: &mut Guest, map: u32) -> Result<u32, i32> {
        match g.call("proxy_get_header_map_size", &[i(map), i(OUT)]) {
            OK => Ok(g.u32_at(OUT)),
            status => Err(status),
        }
    }

    fn edit(g: &mut Guest, call: &str, map: u32, key: &str, value: &str) -> i32 {
        let [kp, kl] = g.put(IN, key.as_bytes());
        let [vp, vl] = g.put(IN + 0x100, value.as_bytes());
        if call == "proxy_remove_header_map_value" {
            return g.call(call, &[i(map), kp, kl]);
        }
        g.call(call, &[i(map), kp, kl, vp, vl])
    }

    fn add(g: &mut Guest, map: u32, key: &str, value: &str) -> i32 {
        edit(g, "proxy_add_header_map_value", map, key, value)
    }

    fn trailers(g: &Guest, request: bool) -> Option<Pairs> {
        let s = &g.store.data().streams[&2];
        let t = if request { &s.request_trailers } else { &s.response_trailers };
        t.as_ref().map(Headers::to_pairs)
    }

    #[test]
    fn trailers_are_unavailable_before_they_exist() {
        for phase in [Phase::RequestHeaders, Phase::RequestBody, Phase::ResponseHeaders, Phase::ResponseBody] {
            let mut g = guest(phase, false, None, None);
            for map in [REQ, RESP] {
                assert_eq!(value(&mut g, map, "k"), Err(BAD), "{phase:?} map {map}");
                assert_eq!(pairs(&mut g, map), (OK, Vec::new()), "{phase:?} map {map}");
                assert_eq!(size(&mut g, map), Err(BAD), "{phase:?} map {map}");
                for call in
                    ["proxy_add_header_map_value", "proxy_replace_header_map_value", "proxy_remove_header_map_value"]
                {
                    assert_eq!(edit(&mut g, call, map, "k", "v"), BAD, "{call} in {phase:?} map {map}");
                }
                assert_eq!(g.call("proxy_set_header_map_pairs", &[i(map), i(IN), i(0)]), BAD);
            }
            assert_eq!((trailers(&g, true), trailers(&g, false)), (None, None), "nothing created in {phase:?}");
        }
    }

    #[test]
    fn the_final_body_callback_creates_the_trailers_of_its_own_direction() {
        for (phase, own, other) in [(Phase::RequestBody, REQ, RESP), (Phase::ResponseBody, RESP, REQ)] {
            let mut g = guest(phase, true, None, None);
            assert_eq!(value(&mut g, own, "x-added"), Err(BAD), "not created by a read");
            assert_eq!(add(&mut g, other, "x-added", "1"), BAD, "{phase:?}: the other direction");
            assert_eq!(add(&mut g, own, "x-added", "1"), OK, "{phase:?}");
            assert_eq!(value(&mut g, own, "x-added"), Ok("1".into()), "read back in the same callback");
            assert_eq!(size(&mut g, own), Ok(8));
            assert_eq!(trailers(&g, own == REQ), Some(p(&[("x-added", "1")])));
            assert_eq!(trailers(&g, own != REQ), None);
        }
    }

    #[test]
    fn trailers_are_writable_in_their_phase_and_read_only_after_it() {
        let mut g = guest(Phase::RequestTrailers, false, Some(map(&[("a", "1"), ("b", "2"), ("a", "3")])), None);
        assert_eq!(value(&mut g, REQ, "A"), Ok("1".into()), "the first value, any case");
        assert_eq!(value(&mut g, REQ, "missing"), Err(MISSING));
        assert_eq!(edit(&mut g, "proxy_replace_header_map_value", REQ, "a", "x"), OK);
        assert_eq!(edit(&mut g, "proxy_remove_header_map_value", REQ, "b", ""), OK);
        assert_eq!(add(&mut g, REQ, "C", "4"), OK);
        assert_eq!(pairs(&mut g, REQ), (OK, p(&[("a", "x"), ("c", "4")])));
        assert_eq!(add(&mut g, RESP, "c", "4"), BAD, "response trailers are not writable in the request phase");
        let encoded = weir_sdk::abi::encode_pairs(&p(&[("z", "9")]));
        let [ptr, len] = g.put(IN, &encoded);
        assert_eq!(g.call("proxy_set_header_map_pairs", &[i(REQ), ptr, len]), OK);
        assert_eq!(trailers(&g, true), Some(p(&[("z", "9")])));
        g.store.data_mut().streams.get_mut(&2).expect("stream").phase = Phase::ResponseHeaders;
        assert_eq!(value(&mut g, REQ, "z"), Ok("9".into()), "readable until the stream ends");
        assert_eq!(add(&mut g, REQ, "y", "1"), BAD, "but no longer writable");
    }

    #[test]
    fn on_log_reads_response_trailers_and_not_request_trailers() {
        let mut g = guest(Phase::Log, false, Some(map(&[("a", "1")])), Some(map(&[("grpc-status", "0")])));
        assert_eq!(value(&mut g, REQ, "a"), Err(MISSING), "NOT_FOUND in on_log, as Envoy");
        assert_eq!(pairs(&mut g, REQ), (OK, Vec::new()));
        assert_eq!(size(&mut g, REQ), Err(BAD));
        assert_eq!(value(&mut g, RESP, "grpc-status"), Ok("0".into()));
        assert_eq!(pairs(&mut g, RESP), (OK, p(&[("grpc-status", "0")])));
        assert_eq!(add(&mut g, RESP, "x", "1"), BAD, "read-only");
        let mut none = guest(Phase::Log, false, None, None);
        assert_eq!(value(&mut none, RESP, "grpc-status"), Err(MISSING), "no trailers: an empty map");
        assert_eq!(size(&mut none, RESP), Ok(0));
        assert_eq!(pairs(&mut none, RESP), (OK, Vec::new()));
        assert_eq!(value(&mut none, 8, "k"), Err(BAD), "an unknown map");
    }
}
