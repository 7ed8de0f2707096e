//! Every test filter (built from tests/filters with the unmodified crates.io proxy-wasm SDK) loads: it
//! compiles, every import links, `_initialize` runs, and its root context starts and configures.

use std::sync::Arc;
use weir::wasm::{Limits, Vm, WasmRuntime};
use weir_tests::filters;

#[test]
fn every_test_filter_loads_starts_and_configures() {
    let rt = WasmRuntime::new(
        Limits::default(),
        weir::abi::HostShared::new(Arc::new(weir::telemetry::metrics::Metrics::new())),
    )
    .expect("runtime");
    for (name, path) in filters::ALL {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let module = rt.load(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(module.abi, weir_sdk::abi::AbiVersion::V0_2_1, "{name}");
        assert_eq!(module.allocator, "proxy_on_memory_allocate", "{name}");
        let mut vm =
            Vm::start(&rt, module, 0, Arc::from(""), Arc::from(&b""[..])).unwrap_or_else(|e| panic!("{name}: {e}"));
        let config: &[u8] = if *name == "headers" { br#"{"name": "alpha"}"# } else { b"" };
        let root = vm.create_root(Arc::from(*name), Default::default(), Arc::from(config));
        assert_eq!(root.unwrap_or_else(|e| panic!("{name}: {e}")), 1, "{name}");
    }
}

#[test]
fn a_refused_configuration_reports_the_filters_own_words() {
    let rt = WasmRuntime::new(
        Limits::default(),
        weir::abi::HostShared::new(Arc::new(weir::telemetry::metrics::Metrics::new())),
    )
    .expect("runtime");
    let bytes = std::fs::read(filters::HEADERS_WASM).expect("headers.wasm");
    let module = rt.load("headers", &bytes).expect("loads");
    let mut vm = Vm::start(&rt, module, 0, Arc::from(""), Arc::from(&b""[..])).expect("starts");
    let err =
        vm.create_root(Arc::from("headers"), Default::default(), Arc::from(&b"{not json"[..])).unwrap_err().to_string();
    assert!(
        err.starts_with("module headers: the filter rejected its configuration; the filter logged: headers root 1: rejecting configuration:"),
        "{err}"
    );
    assert!(!vm.failed());
}
