//! The example filters built for wasm32-wasip1 with `--profile filter`: what they export and import, checked
//! against the ABI and the rules of Weir's loader (`host/src/wasm/module.rs`), and the hello filter's size.
//!
//! The build runs once per test binary, in its own target directory (`<target>/sdk-examples`) so it never waits
//! for the lock of the build that runs the tests. It fails if the `wasm32-wasip1` target is not installed
//! (`rustup target add wasm32-wasip1`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The budget for the hello filter.
const HELLO_MAX_BYTES: usize = 150 * 1024;

/// The callbacks the SDK exports, with their signatures (`i` = i32), as the host looks them up.
const EXPORTS: &[(&str, &str)] = &[
    ("_initialize", "->"),
    ("proxy_abi_version_0_2_1", "->"),
    ("proxy_on_memory_allocate", "i->i"),
    ("proxy_on_context_create", "ii->"),
    ("proxy_on_vm_start", "ii->i"),
    ("proxy_on_configure", "ii->i"),
    ("proxy_on_tick", "i->"),
    ("proxy_on_queue_ready", "ii->"),
    ("proxy_on_request_headers", "iii->i"),
    ("proxy_on_request_body", "iii->i"),
    ("proxy_on_request_trailers", "ii->i"),
    ("proxy_on_response_headers", "iii->i"),
    ("proxy_on_response_body", "iii->i"),
    ("proxy_on_response_trailers", "ii->i"),
    ("proxy_on_http_call_response", "iiiii->"),
    ("proxy_on_log", "i->"),
    ("proxy_on_done", "i->i"),
    ("proxy_on_delete", "i->"),
];

/// The proxy-wasm 0.2.1 hostcalls (ABI reference §5) with their signatures (`I` = i64).
const HOSTCALLS: &[(&str, &str)] = &[
    ("proxy_log", "iii->i"),
    ("proxy_get_log_level", "i->i"),
    ("proxy_get_current_time_nanoseconds", "i->i"),
    ("proxy_set_tick_period_milliseconds", "i->i"),
    ("proxy_get_buffer_bytes", "iiiii->i"),
    ("proxy_set_buffer_bytes", "iiiii->i"),
    ("proxy_get_buffer_status", "iii->i"),
    ("proxy_get_header_map_pairs", "iii->i"),
    ("proxy_set_header_map_pairs", "iii->i"),
    ("proxy_get_header_map_size", "ii->i"),
    ("proxy_get_header_map_value", "iiiii->i"),
    ("proxy_add_header_map_value", "iiiii->i"),
    ("proxy_replace_header_map_value", "iiiii->i"),
    ("proxy_remove_header_map_value", "iii->i"),
    ("proxy_continue_stream", "i->i"),
    ("proxy_close_stream", "i->i"),
    ("proxy_send_local_response", "iiiiiiii->i"),
    ("proxy_http_call", "iiiiiiiiii->i"),
    ("proxy_get_status", "iii->i"),
    ("proxy_get_shared_data", "iiiii->i"),
    ("proxy_set_shared_data", "iiiii->i"),
    ("proxy_register_shared_queue", "iii->i"),
    ("proxy_resolve_shared_queue", "iiiii->i"),
    ("proxy_enqueue_shared_queue", "iii->i"),
    ("proxy_dequeue_shared_queue", "iii->i"),
    ("proxy_define_metric", "iiii->i"),
    ("proxy_increment_metric", "iI->i"),
    ("proxy_record_metric", "iI->i"),
    ("proxy_get_metric", "ii->i"),
    ("proxy_get_property", "iiii->i"),
    ("proxy_set_property", "iiii->i"),
    ("proxy_set_effective_context", "i->i"),
    ("proxy_done", "->i"),
    ("proxy_call_foreign_function", "iiiiii->i"),
];

/// Builds the examples once; returns the directory of the `.wasm` files.
fn examples() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let target = exe.ancestors().nth(3).expect("<target>/debug/deps/all-*").join("sdk-examples");
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(env!("CARGO"))
            .current_dir(&workspace)
            .args(["build", "-p", "weir-sdk", "--examples", "--target", "wasm32-wasip1", "--profile", "filter"])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("running cargo");
        assert!(status.success(), "building the example filters for wasm32-wasip1 failed (is the target installed?)");
        target.join("wasm32-wasip1").join("filter").join("examples")
    })
}

/// What a module exports and imports, with signatures.
struct Module {
    size: usize,
    exports: BTreeMap<String, Export>,
    imports: BTreeMap<(String, String), String>,
}

#[derive(Debug, PartialEq)]
enum Export {
    Func(String),
    Memory,
    Other,
}

/// Reads a module's type, import, function and export sections (enough of the binary format for this test).
fn parse(name: &str) -> Module {
    let bytes = std::fs::read(examples().join(format!("{name}.wasm"))).expect("the example was built");
    assert_eq!(&bytes[..8], b"\0asm\x01\0\0\0", "{name}: not a wasm module");
    let mut reader = Reader { bytes: &bytes, at: 8 };
    let (mut types, mut funcs, mut imports, mut exports) = (Vec::new(), Vec::new(), BTreeMap::new(), Vec::new());
    while reader.at < bytes.len() {
        let id = reader.byte();
        let size = reader.leb() as usize;
        let end = reader.at + size;
        match id {
            1 => {
                for _ in 0..reader.leb() {
                    assert_eq!(reader.byte(), 0x60, "func type");
                    let params: String = (0..reader.leb()).map(|_| val(reader.byte())).collect();
                    let results: String = (0..reader.leb()).map(|_| val(reader.byte())).collect();
                    types.push(format!("{params}->{results}"));
                }
            }
            2 => {
                for _ in 0..reader.leb() {
                    let (module, field) = (reader.name(), reader.name());
                    let kind = reader.byte();
                    assert_eq!(kind, 0, "{module}.{field}: only functions are imported");
                    let ty = types[reader.leb() as usize].clone();
                    funcs.push(ty.clone());
                    imports.insert((module, field), ty);
                }
            }
            3 => {
                for _ in 0..reader.leb() {
                    funcs.push(types[reader.leb() as usize].clone());
                }
            }
            7 => {
                for _ in 0..reader.leb() {
                    let field = reader.name();
                    let kind = reader.byte();
                    let index = reader.leb() as usize;
                    exports.push((field, kind, index));
                }
            }
            _ => {}
        }
        reader.at = end;
    }
    let exports = exports
        .into_iter()
        .map(|(field, kind, index)| {
            let export = match kind {
                0 => Export::Func(funcs[index].clone()),
                2 => Export::Memory,
                _ => Export::Other,
            };
            (field, export)
        })
        .collect();
    Module { size: bytes.len(), exports, imports }
}

fn val(byte: u8) -> char {
    match byte {
        0x7f => 'i',
        0x7e => 'I',
        0x7d => 'f',
        0x7c => 'F',
        other => panic!("value type {other:#x}"),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        self.at += 1;
        self.bytes[self.at - 1]
    }

    fn leb(&mut self) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let byte = self.byte();
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
            shift += 7;
        }
    }

    fn name(&mut self) -> String {
        let len = self.leb() as usize;
        self.at += len;
        String::from_utf8(self.bytes[self.at - len..self.at].to_vec()).expect("UTF-8 name")
    }
}

/// The checks Weir's loader makes, plus exact signatures (the host treats a callback of another signature as
/// absent, silently).
fn check_module(name: &str) -> Module {
    let module = parse(name);
    assert_eq!(module.exports.get("memory"), Some(&Export::Memory), "{name}: exports its memory");
    for &(export, signature) in EXPORTS {
        assert_eq!(module.exports.get(export), Some(&Export::Func(signature.into())), "{name}: export {export}");
    }
    let expected: Vec<&str> = EXPORTS.iter().map(|(e, _)| *e).chain(["memory"]).collect();
    for export in module.exports.keys() {
        assert!(expected.contains(&export.as_str()), "{name}: unexpected export {export}");
    }
    assert!(!module.exports.contains_key("_start") && !module.exports.contains_key("malloc"), "{name}");
    for ((from, field), signature) in &module.imports {
        match from.as_str() {
            "env" => {
                let known = HOSTCALLS.iter().find(|(hostcall, _)| hostcall == field);
                assert_eq!(known.map(|(_, s)| *s), Some(signature.as_str()), "{name}: import env.{field}");
            }
            "wasi_snapshot_preview1" => {}
            other => panic!("{name}: imports {other}.{field}, which Weir's loader refuses"),
        }
    }
    module
}

#[test]
fn hello_has_the_abi_surface_and_fits_the_budget() {
    let module = check_module("hello");
    eprintln!("hello.wasm: {} bytes", module.size);
    assert!(module.size <= HELLO_MAX_BYTES, "hello.wasm is {} bytes, over {HELLO_MAX_BYTES}", module.size);
    let env: Vec<&str> = module.imports.keys().filter(|(m, _)| m == "env").map(|(_, f)| f.as_str()).collect();
    for needed in ["proxy_log", "proxy_get_buffer_bytes", "proxy_get_header_map_value", "proxy_send_local_response"] {
        assert!(env.contains(&needed), "hello imports {needed}: {env:?}");
    }
    assert!(!env.contains(&"proxy_define_metric"), "helpers a filter does not use are not linked: {env:?}");
}

#[test]
fn quota_imports_only_abi_hostcalls() {
    let module = check_module("quota");
    eprintln!("quota.wasm: {} bytes", module.size);
    let env = module.imports.keys().filter(|(m, _)| m == "env").count();
    assert!(env >= 20, "quota uses most of the SDK: {:?}", module.imports.keys());
}
