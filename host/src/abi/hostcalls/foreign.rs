//! Foreign functions: `proxy_call_foreign_function(name, args) -> result`, host extensions called by name,
//! and the ABI 0.1.0 `proxy_clear_route_cache`.
//!
//! | name | arguments | result | Envoy |
//! | --- | --- | --- | --- |
//! | `compress` | any bytes | the zlib stream (RFC 1950, default level) | the same |
//! | `uncompress` | a zlib stream | the bytes, at most [`MAX_UNCOMPRESSED_BYTES`] | the same, unbounded |
//! | `clear_route_cache` | ignored | none | the same |
//! | `weir.memoize_response` | a `MemoSpec` as JSON | none | absent (`NOT_FOUND`) |
//! | `weir.declare_stream_needs` | a `StreamNeeds` as JSON | none | absent (`NOT_FOUND`) |
//!
//! - Every other name gets `NOT_FOUND`, among them Envoy's `declare_property`, `set_envoy_filter_state`,
//!   `verify_signature` and the CEL `expr_create` / `expr_evaluate` / `expr_delete`.
//! - `uncompress` of bytes that are not a whole zlib stream gets `SERIALIZATION_FAILURE`, as Envoy answers;
//!   so does a stream that would inflate past [`MAX_UNCOMPRESSED_BYTES`] (a "zip bomb" stops there,
//!   having cost at most that much memory).
//! - `compress` and `uncompress` take at most [`MAX_INPUT_BYTES`] of arguments (`BAD_ARGUMENT` beyond): the
//!   work runs inside a hostcall, outside the callback deadline, so it is bounded here.
//! - A result goes to the guest as every other returned value ([`memory::return_bytes`]); an empty one is
//!   `(0, 0)`.
//! - `clear_route_cache` marks the acting HTTP stream's request: once the request callbacks are done, the
//!   proxy chooses the route again from the headers as the filters left them. It answers OK everywhere, as
//!   Envoy does (outside a stream there is nothing to mark).
//! - `weir.memoize_response` records what the local response the callback sends depends on (`memoize`).
//! - `weir.declare_stream_needs` records, for the acting root context, what its HTTP contexts use; streams that
//!   begin after it skip the rest (`filter::chain`, `filter::body`, `wasm::vm`). Called from an HTTP context, or
//!   with JSON that is not a `StreamNeeds`, it gets `BAD_ARGUMENT`.

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use flate2::{Compression, Decompress, FlushDecompress};
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{Status, StreamNeeds, DECLARE_STREAM_NEEDS, MEMOIZE_RESPONSE};

/// The most bytes `uncompress` produces (16 MiB, the most a filter may hold of a body).
pub const MAX_UNCOMPRESSED_BYTES: usize = 16 << 20;
/// The most argument bytes `compress` and `uncompress` take (16 MiB).
pub const MAX_INPUT_BYTES: usize = 16 << 20;

/// What a foreign function does with its arguments; `Ok(None)` when it returns nothing.
fn dispatch(c: &mut Caller<'_, VmState>, name: &[u8], args: &[u8]) -> Result<Option<Vec<u8>>, Status> {
    match name {
        b"compress" => compress(args).map(Some),
        b"uncompress" => uncompress(args, MAX_UNCOMPRESSED_BYTES).map(Some),
        b"clear_route_cache" => {
            clear_route_cache(c);
            Ok(None)
        }
        name if name == MEMOIZE_RESPONSE.as_bytes() => {
            super::memoize::record(c.data_mut(), args)?;
            Ok(None)
        }
        name if name == DECLARE_STREAM_NEEDS.as_bytes() => {
            declare_stream_needs(c.data_mut(), args)?;
            Ok(None)
        }
        _ => Err(Status::NotFound),
    }
}

/// Records what the acting root context's HTTP contexts use; only a root context may declare it.
fn declare_stream_needs(state: &mut VmState, args: &[u8]) -> Result<(), Status> {
    let root = state.acting_context();
    if !state.roots.contains(&root) {
        return Err(Status::BadArgument);
    }
    let needs = StreamNeeds::from_json(args).map_err(|_| Status::BadArgument)?;
    state.stream_needs.insert(root, needs);
    Ok(())
}

/// zlib-compresses `data` at the default level.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, Status> {
    if data.len() > MAX_INPUT_BYTES {
        return Err(Status::BadArgument);
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut encoder = flate2::write::ZlibEncoder::new(&mut out, Compression::default());
    std::io::Write::write_all(&mut encoder, data).map_err(|_| Status::SerializationFailure)?;
    encoder.finish().map_err(|_| Status::SerializationFailure)?;
    Ok(out)
}

/// Inflates a whole zlib stream into at most `limit` bytes: `SERIALIZATION_FAILURE` for anything else (not
/// zlib, a corrupt or cut stream, or more than `limit` bytes of output). Bytes after the stream's end are
/// ignored, as zlib's `uncompress` does.
pub fn uncompress(data: &[u8], limit: usize) -> Result<Vec<u8>, Status> {
    if data.len() > MAX_INPUT_BYTES {
        return Err(Status::BadArgument);
    }
    let mut inflater = Decompress::new(true);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() {
            // Room for one byte past the limit tells "exactly the limit" from "more than the limit".
            let room = out.len().clamp(64, 1 << 20).min(limit.saturating_add(1).saturating_sub(out.len()));
            if room == 0 {
                return Err(Status::SerializationFailure);
            }
            out.reserve_exact(room);
        }
        let (read, written) = (inflater.total_in(), inflater.total_out());
        let rest = usize::try_from(read).ok().and_then(|r| data.get(r..)).unwrap_or_default();
        // FlushDecompress::None: Finish would ask for the whole output in one call (miniz's one-shot mode).
        let state =
            inflater.decompress_vec(rest, &mut out, FlushDecompress::None).map_err(|_| Status::SerializationFailure)?;
        if out.len() > limit {
            return Err(Status::SerializationFailure);
        }
        if state == flate2::Status::StreamEnd {
            return Ok(out);
        }
        let stuck = inflater.total_in() == read && inflater.total_out() == written;
        if stuck && out.len() < out.capacity() {
            return Err(Status::SerializationFailure); // the input ended before the stream did
        }
    }
}

/// Marks the acting HTTP stream's request for the route to be chosen again (nothing outside a stream).
pub(super) fn clear_route_cache(c: &mut Caller<'_, VmState>) {
    if let Some(info) = c.data_mut().acting_stream().and_then(|s| s.info.as_ref()) {
        info.live.clear_route_cache();
    }
}

fn call(
    c: &mut Caller<'_, VmState>,
    name: (u32, u32),
    args: (u32, u32),
    ret_ptr: u32,
    ret_len: u32,
) -> Result<(), Status> {
    let name = memory::read(c, name.0, name.1)?;
    let args = memory::read(c, args.0, args.1)?;
    // The out-parameters are checked before the function runs, so a bad pointer has no side effect.
    memory::check(c, ret_ptr, 4)?;
    memory::check(c, ret_len, 4)?;
    let result = dispatch(c, &name, &args)?.unwrap_or_default();
    memory::return_bytes(c, &result, ret_ptr, ret_len)
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Caller<'_, VmState>, np: i32, nl: i32, ap: i32, al: i32, rp: i32, rl: i32| {
            status(call(&mut c, (np as u32, nl as u32), (ap as u32, al as u32), rp as u32, rl as u32))
        },
    )?;
    // ABI 0.1.0: the same as the foreign function.
    linker.func_wrap("env", "proxy_clear_route_cache", |mut c: Caller<'_, VmState>| {
        clear_route_cache(&mut c);
        Status::Ok as i32
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{host, i, Guest, BAD, IN, OUT};
    use super::*;
    use crate::abi::stream::{RequestInfo, StreamData};
    use std::sync::Arc;

    #[test]
    fn compress_round_trips_and_is_zlib() {
        for data in [&b""[..], b"a", &b"hello hello hello hello ".repeat(100), &(0..=255u8).collect::<Vec<u8>>()] {
            let packed = compress(data).expect("compress");
            assert_eq!(packed[0], 0x78, "a zlib header (deflate, 32 KiB window)");
            assert_eq!(u16::from_be_bytes([packed[0], packed[1]]) % 31, 0, "zlib header check bits");
            assert_eq!(uncompress(&packed, MAX_UNCOMPRESSED_BYTES), Ok(data.to_vec()), "{} bytes", data.len());
        }
        assert!(compress(&b"a".repeat(10_000)).expect("compress").len() < 100, "repetition compresses");
    }

    #[test]
    fn uncompress_refuses_what_is_not_a_whole_stream_within_the_limit() {
        let packed = compress(&b"0123456789".repeat(1000)).expect("compress");
        let mut trailing = packed.clone();
        trailing.extend_from_slice(b"junk after the end");
        let fail = Err(Status::SerializationFailure);
        // (input, limit, answer)
        type Row<'a> = (&'a [u8], usize, Result<Vec<u8>, Status>);
        let table: Vec<Row<'_>> = vec![
            (b"not zlib at all", 1 << 20, fail.clone()),
            (b"", 1 << 20, fail.clone()),
            (&packed[..packed.len() - 1], 1 << 20, fail.clone()),
            (&packed[..2], 1 << 20, fail.clone()),
            (&packed, 10_000, Ok(b"0123456789".repeat(1000))),
            (&packed, 9_999, fail.clone()),
            (&trailing, 1 << 20, Ok(b"0123456789".repeat(1000))),
        ];
        for (n, (input, limit, expect)) in table.into_iter().enumerate() {
            assert_eq!(uncompress(input, limit), expect, "row {n}");
        }
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        assert_eq!(compress(&vec![0; MAX_INPUT_BYTES + 1]), Err(Status::BadArgument), "at most MAX_INPUT_BYTES");
        // 64 MiB of zeros compress to about 64 KiB.
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
        for _ in 0..64 {
            std::io::Write::write_all(&mut encoder, &[0; 1 << 20]).expect("write");
        }
        let bomb = encoder.finish().expect("finish");
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        assert_eq!(uncompress(&bomb, MAX_UNCOMPRESSED_BYTES), Err(Status::SerializationFailure));
    }

    const CALLS: &[(&str, &str)] = &[("proxy_call_foreign_function", "iiiiii"), ("proxy_clear_route_cache", "")];

    fn call(g: &mut Guest, name: &[u8], args: &[u8]) -> Result<Vec<u8>, i32> {
        let [np, nl] = g.put(IN, name);
        let [ap, al] = g.put(IN + 0x100, args);
        g.clear_out();
        match g.call("proxy_call_foreign_function", &[np, nl, ap, al, i(OUT), i(OUT + 4)]) {
            0 => Ok(g.returned()),
            status => Err(status),
        }
    }

    fn info() -> Arc<RequestInfo> {
        Arc::new(RequestInfo {
            source: "127.0.0.1:1".parse().expect("addr"),
            destination: "127.0.0.1:2".parse().expect("addr"),
            tls: false,
            protocol: "HTTP/1.1",
            time: std::time::SystemTime::now(),
            route: Arc::from("r"),
            cluster: None,
            connection_id: 1,
            started: std::time::Instant::now(),
            server_name: None,
            tls_version: None,
            live: Arc::default(),
        })
    }

    #[test]
    fn foreign_functions_through_guest_memory() {
        let mut g = Guest::new(CALLS, host(), "vm");
        let packed = call(&mut g, b"compress", b"hello hello hello").expect("compress");
        assert_eq!(call(&mut g, b"uncompress", &packed), Ok(b"hello hello hello".to_vec()));
        assert_eq!(call(&mut g, b"uncompress", b"garbage"), Err(Status::SerializationFailure as i32));
        assert_eq!(call(&mut g, b"compress", b"").map(|p| p.len()), Ok(8), "an empty stream still has a header");
        for name in [
            &b"declare_property"[..],
            b"set_envoy_filter_state",
            b"verify_signature",
            b"expr_create",
            b"expr_evaluate",
            b"expr_delete",
            b"",
            b"Compress",
        ] {
            assert_eq!(call(&mut g, name, b""), Err(Status::NotFound as i32), "{}", String::from_utf8_lossy(name));
        }
        let memory = Status::InvalidMemoryAccess as i32;
        let [ap, al] = g.put(IN + 0x100, b"x");
        let [np, nl] = g.put(IN, b"compress");
        assert_eq!(g.call("proxy_call_foreign_function", &[i(BAD), i(1), ap, al, i(OUT), i(OUT + 4)]), memory);
        assert_eq!(g.call("proxy_call_foreign_function", &[np, nl, i(BAD), i(1), i(OUT), i(OUT + 4)]), memory);
        assert_eq!(g.call("proxy_call_foreign_function", &[np, nl, ap, al, i(BAD), i(OUT)]), memory);

        // clear_route_cache marks the acting stream's request, OK everywhere.
        assert_eq!(call(&mut g, b"clear_route_cache", b""), Ok(Vec::new()), "no stream: nothing to mark");
        assert_eq!(g.call("proxy_clear_route_cache", &[]), 0);
        let (first, second) = (info(), info());
        let state = g.store.data_mut();
        state.roots = vec![1];
        state.streams.insert(2, StreamData { root: 1, info: Some(first.clone()), ..StreamData::default() });
        state.streams.insert(3, StreamData { root: 1, info: Some(second.clone()), ..StreamData::default() });
        state.current_context = 2;
        assert_eq!(call(&mut g, b"clear_route_cache", b"ignored"), Ok(Vec::new()));
        assert!(first.live.take_route_cache_cleared() && !second.live.take_route_cache_cleared());
        assert!(!first.live.take_route_cache_cleared(), "taking the mark clears it");
        g.store.data_mut().current_context = 3;
        assert_eq!(g.call("proxy_clear_route_cache", &[]), 0, "the ABI 0.1.0 call does the same");
        assert!(second.live.take_route_cache_cleared() && !first.live.take_route_cache_cleared());
    }

    #[test]
    fn declare_stream_needs_is_kept_per_root_and_refused_elsewhere() {
        let mut g = Guest::new(CALLS, host(), "vm");
        let name = DECLARE_STREAM_NEEDS.as_bytes();
        let state = g.store.data_mut();
        state.roots = vec![1, 4];
        state.streams.insert(2, StreamData { root: 1, ..StreamData::default() });
        let bad = Err(Status::BadArgument as i32);
        // (acting context, arguments, answer)
        type Row<'a> = (u32, &'a str, Result<Vec<u8>, i32>);
        let table: &[Row<'_>] = &[
            (1, r#"{"response_body": false, "log": false}"#, Ok(Vec::new())),
            (4, "{}", Ok(Vec::new())),
            (2, "{}", bad.clone()),
            (0, "{}", bad.clone()),
            (1, r#"{"body": false}"#, bad.clone()),
            (1, "not json", bad.clone()),
            (1, "[]", bad.clone()),
        ];
        for (n, (context, args, answer)) in table.iter().enumerate() {
            g.store.data_mut().current_context = *context;
            assert_eq!(&call(&mut g, name, args.as_bytes()), answer, "row {n}");
        }
        let needs = &g.store.data().stream_needs;
        assert_eq!(needs.get(&1), Some(&StreamNeeds { response_body: false, log: false, ..StreamNeeds::ALL }));
        assert_eq!(needs.get(&4), Some(&StreamNeeds::ALL));
        assert_eq!(needs.len(), 2, "refused calls record nothing");
    }

    #[test]
    fn memoize_response_records_the_inputs_of_the_acting_request() {
        use crate::abi::header_map::Headers;
        use crate::abi::memo::Values;
        use crate::abi::stream::Phase;
        use weir_sdk::abi::MetricType;

        let host = host();
        host.data.set("vm", b"entry", b"v", 0).expect("set");
        let hits = host.filter_metrics.define(MetricType::Counter, "hits", "test").expect("counter");
        let gauge = host.filter_metrics.define(MetricType::Gauge, "g", "test").expect("gauge");
        let mut g = Guest::new(CALLS, host.clone(), "vm");
        let mut map = http::HeaderMap::new();
        map.append("accept", "a".parse().expect("value"));
        map.append("accept", "b".parse().expect("value"));
        let request = Headers::request(b"api.test", "/p?q=1", &http::Method::GET, false, map);
        let live = info();
        live.live.with_properties(|p| p.insert(b"weir.consumer".to_vec(), b"ada".to_vec()));
        let state = g.store.data_mut();
        state.roots = vec![1];
        let stream = StreamData { root: 1, info: Some(live), request_headers: request, ..StreamData::default() };
        state.streams.insert(2, stream);
        state.current_context = 2;

        let spec = |extra: &str| {
            format!(
                r#"{{"headers": [":path", "accept", "pragma"], "properties": ["weir.consumer", "weir.tenant"],
                   "shared_data": ["entry", "absent"], "expires_unix_ms": 99999999999999,
                   "counters": [[{hits}, 1]]{extra}}}"#
            )
        };
        assert_eq!(call(&mut g, MEMOIZE_RESPONSE.as_bytes(), spec("").as_bytes()), Ok(Vec::new()));
        let draft = g.store.data_mut().streams.get_mut(&2).and_then(|s| s.memo.take()).expect("recorded");
        let values: Vec<Values> = draft.inputs.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(
            values,
            [
                Values::Pseudo(Some(bytes::Bytes::from_static(b"/p?q=1"))),
                Values::Header(vec!["a".parse().expect("value"), "b".parse().expect("value")]),
                Values::Header(Vec::new()),
            ]
        );
        assert_eq!(
            draft.properties,
            [(b"weir.consumer".to_vec(), Some(b"ada".to_vec())), (b"weir.tenant".to_vec(), None)]
        );
        assert_eq!(draft.shared_data, [(b"entry".to_vec(), host.data.cas("vm", b"entry")), (b"absent".to_vec(), 0)]);
        assert_eq!(draft.counters.len(), 1);

        // (arguments, why refused)
        let bad = Err(Status::BadArgument as i32);
        let table: Vec<(String, &str)> = vec![
            ("not json".into(), "not JSON"),
            (r#"{"headers": []}"#.into(), "no expiry"),
            (spec(r#", "typo": 1"#), "an unknown field"),
            (spec("").replace(r#""pragma""#, r#""bad name""#), "a name no header can have"),
            (spec("").replace(r#""weir.tenant""#, r#""request.path""#), "an Envoy attribute"),
            (spec("").replace(&format!("[[{hits}, 1]]"), &format!("[[{gauge}, 1]]")), "a gauge"),
            (spec("").replace(&format!("[[{hits}, 1]]"), "[[4000, 1]]"), "an unknown counter"),
            (
                format!(
                    r#"{{"headers": {:?}, "expires_unix_ms": 1}}"#,
                    (0..65).map(|n| format!("x-{n}")).collect::<Vec<_>>()
                ),
                "more than MAX_INPUTS inputs",
            ),
        ];
        for (args, why) in &table {
            assert_eq!(call(&mut g, MEMOIZE_RESPONSE.as_bytes(), args.as_bytes()), bad, "{why}");
        }
        let stream = g.store.data_mut().streams.get_mut(&2).expect("stream");
        assert!(stream.memo.is_none(), "a refused call records nothing");
        stream.phase = Phase::ResponseHeaders;
        assert_eq!(call(&mut g, MEMOIZE_RESPONSE.as_bytes(), spec("").as_bytes()), bad, "outside request headers");
        g.store.data_mut().current_context = 0;
        assert_eq!(call(&mut g, MEMOIZE_RESPONSE.as_bytes(), spec("").as_bytes()), bad, "outside a stream");
    }
}
