//! Loading checks and VM lifecycle limits, with hand-written modules.

use super::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A minimal proxy-wasm module: a bump allocator, and callbacks whose bodies the test supplies.
fn module(exports: &str, extra: &str) -> String {
    format!(
        r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    global.get $next
    local.set $p
    global.get $next
    local.get $n
    i32.add
    global.set $next
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32))
  {exports}
  {extra})"#
    )
}

const ABI: &str = r#"(func (export "proxy_abi_version_0_2_1"))"#;

/// on_configure: reads buffer 7 into (ptr at 0, len at 4); accepts when it is "ok", logs and refuses otherwise.
const CONFIGURE: &str = r#"
  (data (i32.const 100) "config refused")
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (i32.const -1) (i32.const 0) (i32.const 4)))
    (if (result i32) (i32.eq (i32.load (i32.const 4)) (i32.const 2))
      (then i32.const 1)
      (else (drop (call $log (i32.const 3) (i32.const 100) (i32.const 14))) i32.const 0)))"#;

fn runtime() -> Arc<WasmRuntime> {
    runtime_with(Limits::default().cpu_clock)
}

/// A runtime whose deadline reads `cpu_clock` (tests give a clock that stands still: a starved thread).
fn runtime_with(cpu_clock: fn() -> Option<Duration>) -> Arc<WasmRuntime> {
    let limits =
        Limits { callback_deadline: Duration::from_millis(50), cpu_clock, memory_bytes: 4 << 20, table_elements: 1000 };
    let host = crate::abi::HostShared::new(Arc::new(crate::telemetry::metrics::Metrics::new()));
    WasmRuntime::new(limits, host).expect("runtime")
}

#[test]
fn load_errors_name_what_is_wrong() {
    let rt = runtime();
    let cases: Vec<(String, &str)> = vec![
        (module("", CONFIGURE), "module m: no proxy-wasm ABI version export (expected one of proxy_abi_version_0_2_1, proxy_abi_version_0_2_0, proxy_abi_version_0_1_0); is it built with a proxy-wasm SDK?"),
        (
            module(ABI, "").replace(r#"(memory (export "memory") 1)"#, "(memory 1)"),
            "module m: missing export memory: the host reads and writes guest memory through it",
        ),
        (
            module(ABI, "").replace(r#"(export "proxy_on_memory_allocate")"#, ""),
            "module m: missing export proxy_on_memory_allocate: the host allocates the values it returns in guest memory (malloc would do too)",
        ),
        (
            module(ABI, "").replacen("(module", r#"(module (import "host" "secret" (func))"#, 1),
            "module m: imports host.secret, but filters may import only from env (proxy-wasm) and wasi_snapshot_preview1 / wasi_unstable",
        ),
        (
            module(ABI, "").replacen("(module", r#"(module (import "env" "proxy_open_socket" (func (param i32) (result i32)))"#, 1),
            "module m: imports env.proxy_open_socket, which Weir does not provide",
        ),
        ("not wasm at all".to_string(), "module m: not a valid WebAssembly module"),
    ];
    for (wat, want) in cases {
        let err = rt.load("m", wat.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with(want), "got: {err}\nwant: {want}");
    }
}

#[test]
fn configure_accepts_or_refuses_with_the_filters_words() {
    let rt = runtime();
    let m = rt.load("cfg", module(ABI, CONFIGURE).as_bytes()).expect("loads");
    assert_eq!(m.abi, weir_sdk::abi::AbiVersion::V0_2_1);
    let mut vm = Vm::start(&rt, m.clone(), 0, Arc::from(""), Arc::from(&b""[..])).expect("starts");
    assert_eq!(vm.create_root("r1".into(), Default::default(), Arc::from(&b"ok"[..])).expect("accepted"), 1);
    let err = vm.create_root("r2".into(), Default::default(), Arc::from(&b"nope"[..])).unwrap_err().to_string();
    assert_eq!(err, "module cfg: the filter rejected its configuration; the filter logged: config refused");
    assert!(!vm.failed(), "a refusal is not a failure");
    // Compiled once per digest.
    rt.load("cfg-again", module(ABI, CONFIGURE).as_bytes()).expect("loads");
    assert_eq!(rt.cached_modules(), 1);
    // Kept while a VM holds it; forgotten once nothing does.
    let digest = m.digest.clone();
    assert!(!rt.forget(&digest), "a VM uses it");
    drop((vm, m));
    assert!(rt.forget(&digest));
    assert_eq!(rt.cached_modules(), 0);
}

/// A VM named `name` whose `proxy_on_configure` never returns.
fn looping_vm(rt: &Arc<WasmRuntime>, name: &str) -> Vm {
    let looping = r#"
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_configure") (param i32 i32) (result i32) (loop $l (br $l)) i32.const 1)"#;
    let m = rt.load(name, module(ABI, looping).as_bytes()).expect("loads");
    Vm::start(rt, m, 0, Arc::from(""), Arc::from(&b""[..])).expect("starts")
}

#[test]
fn an_infinite_loop_hits_the_deadline_and_fails_the_vm() {
    let rt = runtime();
    let mut vm = looping_vm(&rt, "loop");
    let started = Instant::now();
    let err = vm.create_root("r".into(), Default::default(), Arc::from(&b""[..])).unwrap_err().to_string();
    assert!(err.starts_with("module loop: proxy_on_configure failed:") && err.contains("interrupt"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(vm.failed());
    let again = vm.create_root("r".into(), Default::default(), Arc::from(&b""[..])).unwrap_err().to_string();
    assert_eq!(again, "module loop: the VM has failed and is waiting to be replaced");
}

/// A call whose thread gets no CPU (a clock that stands still) is not interrupted at the deadline: it goes on
/// until the wall-clock bound of five deadlines. (With the thread's real clock, the loop above is stopped at
/// about one deadline.)
#[test]
fn a_call_kept_off_the_cpu_outlives_the_deadline_up_to_the_wall_clock_bound() {
    let rt = runtime_with(|| Some(Duration::from_millis(7)));
    let mut vm = looping_vm(&rt, "starved");
    let started = Instant::now();
    let err = vm.create_root("r".into(), Default::default(), Arc::from(&b""[..])).unwrap_err().to_string();
    let took = started.elapsed();
    assert!(err.contains("interrupt"), "{err}");
    // Nine checks half a deadline (25 ms, at least 5 epoch ticks) apart passed before the tenth interrupted it.
    assert!(took >= Duration::from_millis(9 * 25), "interrupted after {took:?}: the CPU rule should not apply");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn unbounded_memory_growth_traps_at_the_cap() {
    let rt = runtime();
    let growing = r#"
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
        (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        i32.const 1)"#;
    let m = rt.load("grow", module(ABI, growing).as_bytes()).expect("loads");
    let mut vm = Vm::start(&rt, m, 0, Arc::from(""), Arc::from(&b""[..])).expect("starts");
    let err = vm.create_root("r".into(), Default::default(), Arc::from(&b""[..])).unwrap_err().to_string();
    assert!(err.starts_with("module grow: proxy_on_vm_start failed:"), "{err}");
    assert!(vm.memory_bytes() <= 4 << 20, "memory stayed under the cap: {}", vm.memory_bytes());
}

#[test]
fn out_of_range_pointers_get_a_status_not_a_crash() {
    let rt = runtime();
    // get_buffer_bytes with out-parameters past the end of memory: INVALID_MEMORY_ACCESS (6), stored at 8.
    let bad = r#"
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_configure") (param i32 i32) (result i32)
        (i32.store (i32.const 8) (call $get_buffer (i32.const 7) (i32.const 0) (i32.const -1) (i32.const 70000) (i32.const 4)))
        (i32.store (i32.const 12) (call $log (i32.const 2) (i32.const -10) (i32.const 100)))
        (i32.store (i32.const 16) (call $log (i32.const 9) (i32.const 0) (i32.const 0)))
        (i32.and (i32.and (i32.eq (i32.load (i32.const 8)) (i32.const 6))
                          (i32.eq (i32.load (i32.const 12)) (i32.const 6)))
                 (i32.eq (i32.load (i32.const 16)) (i32.const 2))))"#;
    let m = rt.load("bad", module(ABI, bad).as_bytes()).expect("loads");
    let mut vm = Vm::start(&rt, m, 0, Arc::from(""), Arc::from(&b""[..])).expect("starts");
    vm.create_root("r".into(), Default::default(), Arc::from(&b"cfg"[..]))
        .expect("statuses 6, 6 and 2 as the ABI says");
}
