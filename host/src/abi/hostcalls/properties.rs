//! Properties: `proxy_get_property` and `proxy_set_property`.
//!
//! A path is NUL-separated segments (ABI §2.2); [`attributes`] answers the Envoy attributes Weir knows
//! from plain data. A value set with `proxy_set_property` is kept for the acting HTTP stream's request under its
//! raw path bytes (as Envoy's filter state `wasm.<path>`), so every filter of the request, in any VM, reads it
//! back by a `get` of the same path whose first segment names no attribute.
//!
//! Weir's limits for `proxy_set_property`: a path and a value are each at most [`MAX_PROPERTY_BYTES`], and
//! one stream holds at most [`MAX_PROPERTIES_PER_STREAM`] paths; beyond either the call gets `BAD_ARGUMENT`
//! (Envoy's answer when filter state rejects a value).

mod attributes;

pub use attributes::{is_attribute_name, resolve, PropertySource};

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use crate::abi::stream::StreamData;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{split_path, Status};

/// The largest property path or value `proxy_set_property` stores, in bytes (1 MiB).
pub const MAX_PROPERTY_BYTES: usize = 1 << 20;
/// The most distinct paths `proxy_set_property` stores on one stream.
pub const MAX_PROPERTIES_PER_STREAM: usize = 1024;

/// Hands the value at the path to the guest: OK (an empty value as `(0, 0)`), or `NOT_FOUND` when the
/// path names nothing that has a value in this context.
fn get(c: &mut Caller<'_, VmState>, path: (u32, u32), ret_ptr: u32, ret_len: u32) -> Result<(), Status> {
    let raw = memory::read(c, path.0, path.1)?;
    let value = {
        let state = c.data();
        let source = PropertySource {
            stream: state.streams.get(&state.acting_context()),
            plugin: state.acting_root().and_then(|root| state.plugins.get(&root)),
            vm_id: &state.vm_id,
        };
        resolve(&split_path(&raw), &source)?
    };
    memory::return_bytes(c, &value, ret_ptr, ret_len)
}

/// Stores `value` under the raw `path` for `stream`'s request (every filter of the request reads it): OK, or
/// `BAD_ARGUMENT` beyond Weir's limits.
fn store(stream: &mut StreamData, path: Vec<u8>, value: Vec<u8>) -> Result<(), Status> {
    let insert = |properties: &mut std::collections::HashMap<Vec<u8>, Vec<u8>>| {
        let full = properties.len() >= MAX_PROPERTIES_PER_STREAM && !properties.contains_key(&path);
        if full || path.len() > MAX_PROPERTY_BYTES || value.len() > MAX_PROPERTY_BYTES {
            return Err(Status::BadArgument);
        }
        properties.insert(path, value);
        Ok(())
    };
    match &stream.info {
        Some(info) => info.live.with_properties(insert),
        None => insert(&mut stream.properties),
    }
}

/// Sets a property on the acting HTTP stream; `NOT_FOUND` outside one (a root context, a tick), as Envoy.
fn set(c: &mut Caller<'_, VmState>, path: (u32, u32), value: (u32, u32)) -> Result<(), Status> {
    let path = memory::read(c, path.0, path.1)?;
    let value = memory::read(c, value.0, value.1)?;
    let stream = c.data_mut().acting_stream().ok_or(Status::NotFound)?;
    store(stream, path, value)
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Caller<'_, VmState>, pp: i32, pl: i32, rp: i32, rl: i32| {
            status(get(&mut c, (pp as u32, pl as u32), rp as u32, rl as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Caller<'_, VmState>, pp: i32, pl: i32, vp: i32, vl: i32| {
            status(set(&mut c, (pp as u32, pl as u32), (vp as u32, vl as u32)))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{host, i, Guest, BAD, IN, OUT};
    use super::*;
    use crate::abi::state::PluginInfo;
    use std::sync::Arc;

    #[test]
    fn set_then_get_round_trips_within_limits() {
        let mut stream = StreamData::default();
        let big = vec![0; MAX_PROPERTY_BYTES + 1];
        for (path, value, expect) in [
            (b"wasm_test_path".to_vec(), b"/a".to_vec(), Ok(())),
            (b"wasm_test_path".to_vec(), b"/b".to_vec(), Ok(())),
            (b"empty".to_vec(), Vec::new(), Ok(())),
            (big.clone(), b"v".to_vec(), Err(Status::BadArgument)),
            (b"k".to_vec(), big, Err(Status::BadArgument)),
        ] {
            assert_eq!(store(&mut stream, path.clone(), value), expect, "{:?}", String::from_utf8_lossy(&path));
        }
        let source = PropertySource { stream: Some(&stream), plugin: None, vm_id: "" };
        assert_eq!(resolve(&split_path(b"wasm_test_path"), &source), Ok(b"/b".to_vec()));
        assert_eq!(resolve(&split_path(b"empty"), &source), Ok(Vec::new()));
        for n in stream.properties.len()..MAX_PROPERTIES_PER_STREAM {
            store(&mut stream, format!("p{n}").into_bytes(), Vec::new()).expect("room left");
        }
        assert_eq!(store(&mut stream, b"one more".to_vec(), Vec::new()), Err(Status::BadArgument));
        assert_eq!(store(&mut stream, b"empty".to_vec(), b"x".to_vec()), Ok(()), "an existing path can change");
    }

    const CALLS: &[(&str, &str)] = &[("proxy_get_property", "iiii"), ("proxy_set_property", "iiii")];

    fn get(g: &mut Guest, path: &[u8]) -> Result<Vec<u8>, i32> {
        let [pp, pl] = g.put(IN, path);
        g.clear_out();
        match g.call("proxy_get_property", &[pp, pl, i(OUT), i(OUT + 4)]) {
            0 => Ok(g.returned()),
            status => Err(status),
        }
    }

    fn set(g: &mut Guest, path: &[u8], value: &[u8]) -> i32 {
        let [pp, pl] = g.put(IN, path);
        let [vp, vl] = g.put(IN + 0x100, value);
        g.call("proxy_set_property", &[pp, pl, vp, vl])
    }

    #[test]
    fn contexts_decide_what_a_property_sees() {
        let mut g = Guest::new(CALLS, host(), "vm-1");
        let not_found = Status::NotFound as i32;
        assert_eq!(get(&mut g, b"plugin_vm_id"), Ok(b"vm-1".to_vec()), "the VM context");
        assert_eq!(get(&mut g, b"plugin_name"), Err(not_found));
        assert_eq!(set(&mut g, b"a\0b", b"v"), not_found, "no stream");
        let state = g.store.data_mut();
        state.roots = vec![1];
        let plugin = PluginInfo { name: Arc::from("p"), root_id: Arc::from("r"), vm_id: Arc::from("vm-1") };
        state.plugins.insert(1, plugin);
        let headers = crate::abi::stream::Headers::from_pairs([(&b":path"[..], &b"/x"[..])]);
        state.streams.insert(2, StreamData { root: 1, request_headers: headers, ..StreamData::default() });
        state.current_context = 1;
        assert_eq!(get(&mut g, b"plugin_name"), Ok(b"p".to_vec()), "a root context");
        assert_eq!(set(&mut g, b"a\0b", b"v"), not_found, "a root context has no stream");
        g.store.data_mut().current_context = 2;
        for (path, expect) in [
            (&b"plugin_root_id"[..], Ok(b"r".to_vec())),
            (b"request\0path", Ok(b"/x".to_vec())),
            (b"a\0b", Err(not_found)),
        ] {
            assert_eq!(get(&mut g, path), expect, "{path:?}");
        }
        assert_eq!(set(&mut g, b"a\0b", b"v"), 0);
        assert_eq!(get(&mut g, b"a\0b"), Err(not_found), "as in Envoy, only single-segment names round-trip");
        assert_eq!(set(&mut g, b"ab", b"v"), 0);
        assert_eq!(get(&mut g, b"ab"), Ok(b"v".to_vec()));
        assert_eq!(set(&mut g, b"ab", b""), 0);
        assert_eq!(get(&mut g, b"ab"), Ok(Vec::new()), "an empty value is OK with (0, 0)");
        let memory = Status::InvalidMemoryAccess as i32;
        assert_eq!(g.call("proxy_get_property", &[i(BAD), i(1), i(OUT), i(OUT + 4)]), memory);
        let [pp, pl] = g.put(IN, b"plugin_root_id");
        assert_eq!(g.call("proxy_get_property", &[pp, pl, i(BAD), i(OUT)]), memory);
        assert_eq!(g.call("proxy_set_property", &[i(IN), i(1), i(BAD), i(1)]), memory);
        // The effective context wins over the current one.
        let state = g.store.data_mut();
        state.current_context = 1;
        state.effective_context = Some(2);
        assert_eq!(get(&mut g, b"request\0path"), Ok(b"/x".to_vec()));
    }
}
