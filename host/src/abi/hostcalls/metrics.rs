//! Metrics: `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`, on
//! the process-wide metrics exported on the admin `/metrics` (see [`crate::abi::shared::FilterMetrics`]),
//! labelled with the defining VM's module name (`VmIdentity::module`).

use super::status;
use crate::abi::memory;
use crate::abi::state::VmState;
use wasmtime::{Caller, Linker};
use weir_sdk::abi::{MetricType, Status};

/// Defines a metric and writes its id: OK, or `BAD_ARGUMENT` for a type above 2 or beyond Weir's limits.
fn define(c: &mut Caller<'_, VmState>, kind: u32, name: (u32, u32), ret_id: u32) -> Result<(), Status> {
    let kind = MetricType::try_from(kind).map_err(|_| Status::BadArgument)?;
    let name = memory::read_string(c, name.0, name.1)?;
    let state = c.data();
    let id = state.host.filter_metrics.define(kind, &name, &state.identity.module)?;
    memory::write_u32(c, ret_id, id).map_err(Status::from)
}

/// Writes a counter's or gauge's value as a u64.
fn get(c: &mut Caller<'_, VmState>, id: u32, ret: u32) -> Result<(), Status> {
    let value = c.data().host.filter_metrics.get(id)?;
    memory::write_u64(c, ret, value).map_err(Status::from)
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Caller<'_, VmState>, kind: i32, np: i32, nl: i32, ret: i32| {
            status(define(&mut c, kind as u32, (np as u32, nl as u32), ret as u32))
        },
    )?;
    linker.func_wrap("env", "proxy_increment_metric", |c: Caller<'_, VmState>, id: i32, delta: i64| {
        status(c.data().host.filter_metrics.increment(id as u32, delta))
    })?;
    // The value is a u64 on the wire (the Rust SDK passes one); Envoy reads it as one too.
    linker.func_wrap("env", "proxy_record_metric", |c: Caller<'_, VmState>, id: i32, value: i64| {
        status(c.data().host.filter_metrics.record(id as u32, value as u64))
    })?;
    linker.func_wrap("env", "proxy_get_metric", |mut c: Caller<'_, VmState>, id: i32, ret: i32| {
        status(get(&mut c, id as u32, ret as u32))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{host, i, Guest, BAD, IN, OUT};
    use wasmtime::Val;
    use weir_sdk::abi::Status;

    const CALLS: &[(&str, &str)] = &[
        ("proxy_define_metric", "iiii"),
        ("proxy_increment_metric", "iI"),
        ("proxy_record_metric", "iI"),
        ("proxy_get_metric", "ii"),
    ];

    #[test]
    fn statuses_and_values_through_guest_memory() {
        let mut g = Guest::new(CALLS, host(), "vm");
        let [np, nl] = g.put(IN, b"m");
        let define = |kind: u32| vec![i(kind), np, nl, i(OUT)];
        let add = |id: u32, v: i64| vec![i(id), Val::I64(v)];
        let get = |id: u32, at: u32| vec![i(id), i(at)];
        let (ok, bad, not_found, memory) = (0, Status::BadArgument as i32, Status::NotFound as i32, 6);
        // (call, arguments, status, the u32 (define) or u64 (get) written at OUT).
        let table: Vec<(&str, Vec<Val>, i32, Option<u64>)> = vec![
            ("proxy_define_metric", define(3), bad, None),
            ("proxy_define_metric", define(0), ok, Some(4)),
            ("proxy_define_metric", define(1), ok, Some(5)),
            ("proxy_define_metric", define(2), ok, Some(6)),
            ("proxy_define_metric", define(0), ok, Some(8)),
            ("proxy_define_metric", vec![i(0), i(BAD), i(1), i(OUT)], memory, None),
            ("proxy_increment_metric", add(4, 0), bad, None),
            ("proxy_increment_metric", add(4, 5), ok, None),
            ("proxy_record_metric", add(8, 2), ok, None),
            ("proxy_get_metric", get(4, OUT), ok, Some(7)),
            ("proxy_increment_metric", add(5, -3), ok, None),
            ("proxy_get_metric", get(5, OUT), ok, Some(u64::MAX - 2)),
            ("proxy_record_metric", add(5, 9), ok, None),
            ("proxy_get_metric", get(5, OUT), ok, Some(9)),
            ("proxy_increment_metric", add(6, 1), bad, None),
            ("proxy_record_metric", add(6, 9), ok, None),
            ("proxy_get_metric", get(6, OUT), bad, None),
            ("proxy_get_metric", get(100, OUT), not_found, None),
            ("proxy_increment_metric", add(100, 1), not_found, None),
            ("proxy_record_metric", add(100, 1), not_found, None),
            ("proxy_get_metric", get(4, BAD), memory, None),
        ];
        let text = g.store.data().host.metrics.render();
        assert!(!text.contains("weir_filter_"), "nothing defined yet: {text}");
        for (n, (call, args, status, written)) in table.into_iter().enumerate() {
            g.clear_out();
            assert_eq!(g.call(call, &args), status, "row {n}: {call}");
            match (call, written) {
                ("proxy_define_metric", Some(id)) => assert_eq!(u64::from(g.u32_at(OUT)), id, "row {n}"),
                (_, Some(value)) => assert_eq!(g.u64_at(OUT), value, "row {n}"),
                (_, None) => {}
            }
        }
        // Exported under the defining VM's module (the test guest's is "test").
        let text = g.store.data().host.metrics.render();
        assert!(text.contains("weir_filter_counter_total{filter=\"test\",name=\"m\"} 7"), "{text}");
    }
}
