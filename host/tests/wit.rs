//! `wit/` against the host: the WIT package describes exactly the imports the host links (module `env`,
//! `wasi_snapshot_preview1`, `wasi_unstable`) and the exports it knows, with the core-wasm signatures the
//! host uses. `wit/README.md` gives the mapping rules this test applies:
//!
//! - world `filter`: the functions of each imported interface are imports from `env`, except interface
//!   `wasi-snapshot-preview1`, whose functions are imports from `wasi_snapshot_preview1` and
//!   `wasi_unstable`; the functions of each exported interface are module exports;
//! - a WIT name is the ABI name in kebab-case (`proxy-get-header-map-value` ↔ `proxy_get_header_map_value`),
//!   except the names in [`SPELLED_DIFFERENTLY`];
//! - each parameter and the result is one core value: `u64`/`s64` an `i64`, every other integer, `bool`,
//!   enum and flags (up to 32) an `i32`; aliases are followed; nothing else is allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::{Engine, ExternType, FuncType, Linker, Store, StoreLimits, ValType};
use weir::abi::hostcalls::capabilities::CALLBACKS;
use weir::abi::{HostShared, PluginInfo, VmIdentity, VmState};
use weir::wasm::{Limits, Vm, WasmRuntime};
use weir_sdk::abi::{AbiVersion, BufferType, LogLevel, MapType, MetricType, PeerType, Status, StreamType};
use wit_parser::{Function, Interface, Resolve, Type, TypeDefKind, WorldItem};

/// The world that describes a filter module.
const WORLD: &str = "filter";
/// The one imported interface whose functions are WASI imports; every other imported interface is `env`.
const WASI_INTERFACE: &str = "wasi-snapshot-preview1";
/// The modules the WASI interface is linked under (the same functions in each).
const WASI_MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];
/// ABI names the kebab-case rule cannot spell (a WIT name cannot start with `_`): (WIT, ABI).
const SPELLED_DIFFERENTLY: &[(&str, &str)] = &[("initialize", "_initialize"), ("start", "_start")];
/// Exports the host calls besides the `proxy_on_*` callbacks of `CALLBACKS`: the allocator
/// (host/src/wasm/module.rs) and the start functions (host/src/wasm/vm.rs).
const HOST_CALLS_TOO: &[&str] = &["proxy_on_memory_allocate", "malloc", "_initialize", "main", "_start"];
/// The interface of the ABI 0.1.0 forms of callbacks whose signature changed (the only export names
/// described twice).
const LEGACY_CALLBACKS: &str = "legacy-callbacks";
/// Functions whose two parameters are not a `<x>-ptr` directly followed by `<x>-len` (WASI's own order).
const PTR_WITHOUT_LEN: &[&str] = &["poll-oneoff"];
/// Exports the WIT says Weir never calls (markers, TCP, gRPC, HTTP/2 METADATA, foreign callbacks).
const NEVER_CALLED: &[&str] = &[
    "proxy_abi_version_0_2_1",
    "proxy_abi_version_0_2_0",
    "proxy_abi_version_0_1_0",
    "proxy_on_request_metadata",
    "proxy_on_response_metadata",
    "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive",
    "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_grpc_close",
    "proxy_on_foreign_function",
    "proxy_on_new_connection",
    "proxy_on_downstream_data",
    "proxy_on_upstream_data",
    "proxy_on_downstream_connection_close",
    "proxy_on_upstream_connection_close",
];

/// A core-wasm value type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Core {
    I32,
    I64,
    F32,
    F64,
}

/// A core-wasm function type.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Signature {
    params: Vec<Core>,
    results: Vec<Core>,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |l: &[Core]| l.iter().map(|c| format!("{c:?}").to_lowercase()).collect::<Vec<_>>().join(", ");
        write!(f, "({}) -> ({})", list(&self.params), list(&self.results))
    }
}

/// One function of the WIT, under its ABI name.
#[derive(Clone)]
struct Described {
    /// The ABI name (`proxy_log`).
    abi: String,
    /// The WIT name (`proxy-log`).
    wit: String,
    /// Its interface.
    interface: String,
    /// Its core signature (`None` when a type has no core form; that is reported as a problem).
    signature: Option<Signature>,
    /// Whether the docs of the function or its interface say Weir never calls it.
    never_called: bool,
    /// Whether its result is a `bool` (for the test guest's answers).
    returns_bool: bool,
}

/// The WIT package, read.
struct Wit {
    resolve: Resolve,
    /// `(module, name)` → function.
    imports: BTreeMap<(String, String), Described>,
    /// Exports, in declaration order (a name may appear twice, with two signatures: ABI 0.1.0 callbacks).
    exports: Vec<Described>,
    /// What is wrong with the WIT on its own.
    problems: Vec<String>,
}

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// The file of `wit/` that declares `interface name`, for messages.
fn file_of(interface: &str) -> String {
    let needle = format!("interface {interface} {{");
    let files = std::fs::read_dir(wit_dir()).into_iter().flatten().flatten().map(|e| e.path());
    let found = files
        .filter(|p| p.extension().is_some_and(|e| e == "wit"))
        .find(|p| std::fs::read_to_string(p).is_ok_and(|text| text.contains(&needle)));
    match found {
        Some(p) => format!("wit/{}", p.file_name().unwrap_or_default().to_string_lossy()),
        None => "wit/".to_string(),
    }
}

/// The ABI name of a WIT function name.
fn abi_name(wit: &str) -> String {
    match SPELLED_DIFFERENTLY.iter().find(|(w, _)| *w == wit) {
        Some((_, abi)) => abi.to_string(),
        None => wit.replace('-', "_"),
    }
}

/// The WIT name of an ABI name (for messages).
fn wit_name(abi: &str) -> String {
    match SPELLED_DIFFERENTLY.iter().find(|(_, a)| *a == abi) {
        Some((wit, _)) => wit.to_string(),
        None => abi.replace('_', "-"),
    }
}

/// The core value a WIT type lowers to, or why it has none.
fn core(resolve: &Resolve, ty: &Type) -> Result<Core, String> {
    match ty {
        Type::Bool | Type::U8 | Type::U16 | Type::U32 | Type::S8 | Type::S16 | Type::S32 | Type::Char => Ok(Core::I32),
        Type::U64 | Type::S64 => Ok(Core::I64),
        Type::F32 => Ok(Core::F32),
        Type::F64 => Ok(Core::F64),
        Type::Id(id) => {
            let def = &resolve.types[*id];
            match &def.kind {
                TypeDefKind::Type(inner) => core(resolve, inner),
                TypeDefKind::Enum(_) => Ok(Core::I32),
                TypeDefKind::Flags(f) if f.flags.len() <= 32 => Ok(Core::I32),
                other => Err(format!(
                    "type `{}` is a {}, which is not one core-wasm value",
                    def.name.as_deref().unwrap_or("(anonymous)"),
                    other.as_str()
                )),
            }
        }
        other => Err(format!("type {other:?} is not one core-wasm value")),
    }
}

/// The name of the alias (`ptr`, `out-ptr`) a type is, if it is one.
fn alias(resolve: &Resolve, ty: &Type) -> Option<String> {
    let Type::Id(id) = ty else { return None };
    let def = &resolve.types[*id];
    match def.kind {
        TypeDefKind::Type(_) => def.name.clone(),
        _ => None,
    }
}

fn has_docs(docs: &wit_parser::Docs) -> bool {
    docs.contents.as_deref().is_some_and(|d| !d.trim().is_empty())
}

impl Wit {
    fn read() -> Wit {
        let mut resolve = Resolve::default();
        let (package, _) =
            resolve.push_dir(wit_dir()).unwrap_or_else(|e| panic!("wit/ does not parse as a WIT package: {e:?}"));
        let world = *resolve.packages[package]
            .worlds
            .get(WORLD)
            .unwrap_or_else(|| panic!("wit/ has no world `{WORLD}`; the test reads the ABI from it"));
        let mut wit = Wit { resolve, imports: BTreeMap::new(), exports: Vec::new(), problems: Vec::new() };
        let world = wit.resolve.worlds[world].clone();
        for (imported, items) in [(true, &world.imports), (false, &world.exports)] {
            for item in items.values() {
                let id = match item {
                    WorldItem::Interface { id, .. } => *id,
                    WorldItem::Function(f) => {
                        wit.problems.push(format!(
                            "world `{WORLD}` names function `{}` directly: put it in an interface (the test maps \
                             interfaces to modules)",
                            f.name
                        ));
                        continue;
                    }
                    WorldItem::Type { .. } => continue,
                };
                let interface = wit.resolve.interfaces[id].clone();
                wit.add(imported, &interface);
            }
        }
        wit
    }

    fn add(&mut self, imported: bool, interface: &Interface) {
        let name = interface.name.clone().unwrap_or_default();
        if !has_docs(&interface.docs) {
            self.problems
                .push(format!("interface `{name}` ({}) has no doc comment: say what it covers", file_of(&name)));
        }
        let interface_never = interface
            .docs
            .contents
            .as_deref()
            .is_some_and(|d| d.contains("never calls them") || d.contains("never called"));
        for f in interface.functions.values() {
            let described = self.describe(&name, f, interface_never);
            if !imported {
                // One name twice only for the ABI 0.1.0 forms (interface `legacy-callbacks`).
                let twice = self.exports.iter().find(|e| e.abi == described.abi);
                if let Some(other) = twice.filter(|o| o.interface != LEGACY_CALLBACKS && name != LEGACY_CALLBACKS) {
                    self.problems.push(format!(
                        "export {} is described twice, in interfaces `{}` and `{name}`: keep one",
                        described.abi, other.interface
                    ));
                }
                if twice.is_some_and(|o| o.signature == described.signature) {
                    self.problems.push(format!(
                        "export {}: its two forms (interfaces `{}` and `{name}`) have the same signature; the ABI \
                         0.1.0 form in `{LEGACY_CALLBACKS}` exists only because it differs",
                        described.abi,
                        twice.map(|o| o.interface.as_str()).unwrap_or_default()
                    ));
                }
                self.exports.push(described);
                continue;
            }
            let modules: &[&str] = if name == WASI_INTERFACE { &WASI_MODULES } else { &["env"] };
            for module in modules {
                let key = (module.to_string(), described.abi.clone());
                if let Some(other) = self.imports.insert(key, described.clone()) {
                    self.problems.push(format!(
                        "{module}.{} is described twice, in interfaces `{}` and `{name}`: keep one",
                        described.abi, other.interface
                    ));
                }
            }
        }
    }

    fn describe(&mut self, interface: &str, f: &Function, interface_never: bool) -> Described {
        let at = format!("`{}` in interface `{interface}` ({})", f.name, file_of(interface));
        if !has_docs(&f.docs) {
            self.problems.push(format!("{at} has no doc comment: say what it does, its parameters and its statuses"));
        }
        self.check_names(&at, f);
        let mut problems = Vec::new();
        let mut lower = |ty: &Type, what: &str| match core(&self.resolve, ty) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(format!("{at}: {what}: {e}; use u32/s32/u64/s64, an enum, flags or an alias of them"));
                None
            }
        };
        let params: Vec<Option<Core>> =
            f.params.iter().map(|p| lower(&p.ty, &format!("parameter `{}`", p.name))).collect();
        let result = f.result.as_ref().map(|t| lower(t, "result"));
        let signature = match (params.into_iter().collect::<Option<Vec<_>>>(), result) {
            (Some(params), None) => Some(Signature { params, results: vec![] }),
            (Some(params), Some(Some(r))) => Some(Signature { params, results: vec![r] }),
            _ => None,
        };
        self.problems.extend(problems);
        let docs = f.docs.contents.as_deref().unwrap_or_default();
        Described {
            abi: abi_name(&f.name),
            wit: f.name.clone(),
            interface: interface.to_string(),
            signature,
            never_called: interface_never || docs.contains("never called") || docs.contains("never calls it"),
            returns_bool: f.result == Some(Type::Bool),
        }
    }

    /// The naming rules of wit/README.md: a `ptr` is `<x>-ptr` followed by `<x>-len: u32`; an `out-ptr`
    /// is `return-<x>`.
    fn check_names(&mut self, at: &str, f: &Function) {
        for (i, p) in f.params.iter().enumerate() {
            match alias(&self.resolve, &p.ty).as_deref() {
                Some("ptr") => {
                    let Some(stem) = p.name.strip_suffix("-ptr") else {
                        self.problems.push(format!("{at}: the `ptr` parameter `{}` must be named `<x>-ptr`", p.name));
                        continue;
                    };
                    let next = f.params.get(i + 1);
                    let len_follows = next.is_some_and(|n| n.name == format!("{stem}-len") && n.ty == Type::U32);
                    if !len_follows && !PTR_WITHOUT_LEN.contains(&f.name.as_str()) {
                        self.problems.push(format!("{at}: `{}` must be followed by `{stem}-len: u32`", p.name));
                    }
                }
                Some("out-ptr") if !p.name.starts_with("return-") => {
                    self.problems
                        .push(format!("{at}: the `out-ptr` parameter `{}` must be named `return-<x>`", p.name));
                }
                _ => {}
            }
        }
    }
}

/// A fresh VM state for a store (the linker iterates its definitions in one).
fn vm_state(host: Arc<HostShared>) -> VmState {
    let identity = VmIdentity { module: Arc::from("wit"), digest: Arc::from("0"), worker: 0 };
    VmState::new(identity, host, Arc::from("wit"), StoreLimits::default(), Arc::from(&b""[..]))
}

fn host_shared() -> Arc<HostShared> {
    HostShared::new(Arc::new(weir::telemetry::metrics::Metrics::new()))
}

fn signature(ty: &FuncType) -> Result<Signature, String> {
    let core = |v: ValType| match v {
        ValType::I32 => Ok(Core::I32),
        ValType::I64 => Ok(Core::I64),
        ValType::F32 => Ok(Core::F32),
        ValType::F64 => Ok(Core::F64),
        other => Err(format!("{other}")),
    };
    Ok(Signature {
        params: ty.params().map(core).collect::<Result<_, _>>()?,
        results: ty.results().map(core).collect::<Result<_, _>>()?,
    })
}

/// What the host's linker defines, `(module, name)` → signature: built by `weir::abi::add_to_linker`, the
/// function `WasmRuntime::new` (host/src/wasm/engine.rs) builds the runtime's linker with.
fn host_imports() -> BTreeMap<(String, String), Result<Signature, String>> {
    let engine = Engine::default();
    let mut linker: Linker<VmState> = Linker::new(&engine);
    weir::abi::add_to_linker(&mut linker).expect("the host's linker builds");
    let mut store = Store::new(&engine, vm_state(host_shared()));
    let defined: Vec<_> = linker.iter(&mut store).map(|(m, n, e)| (m.to_string(), n.to_string(), e)).collect();
    defined
        .into_iter()
        .map(|(module, name, item)| {
            let sig = match item.ty(&store) {
                ExternType::Func(f) => signature(&f),
                other => Err(format!("not a function: {other:?}")),
            };
            ((module, name), sig)
        })
        .collect()
}

/// The exports the host knows: the callbacks of `CALLBACKS`, the ABI markers, the allocator and the start
/// functions.
fn host_exports() -> BTreeSet<String> {
    let markers = [AbiVersion::V0_1_0, AbiVersion::V0_2_0, AbiVersion::V0_2_1].map(|v| v.export_name());
    CALLBACKS.iter().chain(&markers).chain(HOST_CALLS_TOO).map(|s| s.to_string()).collect()
}

fn fail_with(problems: &[String], what: &str) {
    if problems.is_empty() {
        return;
    }
    panic!(
        "wit/ and the host disagree ({what}), {} problem(s):\n  - {}\n\nwit/README.md gives the rules that map WIT \
         names and types to ABI names and core signatures.",
        problems.len(),
        problems.join("\n  - ")
    );
}

/// The WIT on its own: every interface and function has docs, every type has a core form, and parameters
/// follow the naming rules of wit/README.md.
#[test]
fn the_wit_follows_its_own_rules() {
    fail_with(&Wit::read().problems, "rules of wit/README.md");
}

#[test]
fn the_wit_describes_every_import_the_host_links_and_nothing_else() {
    let wit = Wit::read();
    let mut problems = Vec::new();
    let host = host_imports();
    for ((module, name), sig) in &host {
        if module != "env" && !WASI_MODULES.contains(&module.as_str()) {
            problems.push(format!(
                "the host links {module}.{name}, in a module the WIT mapping does not cover (env, {}): extend the \
                 world `{WORLD}`, wit/README.md and this test",
                WASI_MODULES.join(", ")
            ));
            continue;
        }
        let sig = match sig {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("the host links {module}.{name}, whose type has no WIT form: {e}"));
                continue;
            }
        };
        let Some(described) = wit.imports.get(&(module.clone(), name.clone())) else {
            let interface = if module == "env" {
                "an interface world `filter` imports".to_string()
            } else {
                format!("interface `{WASI_INTERFACE}`")
            };
            problems.push(format!(
                "{module}.{name} {sig}: the host registers it, but the WIT does not describe it: add `{}: func(...)` \
                 (core signature {sig}) with its doc comment to {interface}",
                wit_name(name)
            ));
            continue;
        };
        match &described.signature {
            None => problems.push(format!(
                "{module}.{name}: `{}` in interface `{}` has a type without a core form (see \
                 the_wit_follows_its_own_rules)",
                described.wit, described.interface
            )),
            Some(wit_sig) if wit_sig != sig => {
                problems.push(format!(
                    "{module}.{name}: the WIT (`{}` in interface `{}`, {}) gives {wit_sig}, the host's linker has \
                     {sig}: fix the parameter or result types in the WIT (or the host)",
                    described.wit,
                    described.interface,
                    file_of(&described.interface)
                ));
            }
            Some(_) => {}
        }
    }
    for ((module, name), described) in &wit.imports {
        if !host.contains_key(&(module.clone(), name.clone())) {
            problems.push(format!(
                "{module}.{name}: the WIT describes it (`{}` in interface `{}`, {}), but the host does not register \
                 it: remove it from the WIT, or register it in the host (host/src/abi/hostcalls, host/src/abi/wasi.rs)",
                described.wit,
                described.interface,
                file_of(&described.interface)
            ));
        }
    }
    fail_with(&problems, "imports");
}

#[test]
fn the_wit_describes_every_export_the_host_knows_and_nothing_else() {
    let wit = Wit::read();
    let mut problems = Vec::new();
    let known = host_exports();
    let described: BTreeSet<String> = wit.exports.iter().map(|d| d.abi.clone()).collect();
    for name in known.difference(&described) {
        problems.push(format!(
            "export {name}: the host knows it (capabilities::CALLBACKS, the ABI markers, the allocator or the start \
             functions), but the WIT does not describe it: add `{}: func(...)` with its doc comment to an interface \
             world `{WORLD}` exports (wit/callbacks.wit)",
            wit_name(name)
        ));
    }
    for d in wit.exports.iter().filter(|d| !known.contains(&d.abi)) {
        problems.push(format!(
            "export {}: the WIT describes it (`{}` in interface `{}`, {}), but the host does not know it: remove it \
             from the WIT, or teach the host (host/src/abi/hostcalls/capabilities.rs CALLBACKS, host/src/wasm)",
            d.abi,
            d.wit,
            d.interface,
            file_of(&d.interface)
        ));
    }
    for d in &wit.exports {
        if d.never_called != NEVER_CALLED.contains(&d.abi.as_str()) {
            problems.push(format!(
                "export {}: its docs ({}) {} that Weir never calls it, but this test's NEVER_CALLED {} it: make them agree",
                d.abi,
                file_of(&d.interface),
                if d.never_called { "say" } else { "do not say" },
                if d.never_called { "does not list" } else { "lists" }
            ));
        }
    }
    fail_with(&problems, "exports");
}

/// Every enum of interface `types` has the cases, in value order, of the SDK's enum (`weir_sdk::abi`, the
/// one definition the host and the guests share).
#[test]
fn the_wit_enums_are_the_sdk_enums() {
    fn kebab<T: fmt::Debug>(v: T) -> String {
        let mut out = String::new();
        for (i, c) in format!("{v:?}").chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
    fn cases<T: fmt::Debug + TryFrom<u32>>() -> Vec<String> {
        (0..).map_while(|v| T::try_from(v).ok()).map(kebab).collect()
    }
    let sdk: [(&str, Vec<String>); 8] = [
        ("status", cases::<Status>()),
        ("action", cases::<weir_sdk::abi::Action>()),
        ("log-level", cases::<LogLevel>()),
        ("buffer-type", cases::<BufferType>()),
        ("map-type", cases::<MapType>()),
        ("stream-type", cases::<StreamType>()),
        ("peer-type", cases::<PeerType>()),
        ("metric-type", cases::<MetricType>()),
    ];
    let wit = Wit::read();
    let types = wit.resolve.interfaces.iter().find(|(_, i)| i.name.as_deref() == Some("types")).map(|(_, i)| i);
    let types = types.expect("wit/types.wit declares interface `types`");
    let mut problems = Vec::new();
    for (name, want) in sdk {
        let got: Vec<String> = match types.types.get(name).map(|id| &wit.resolve.types[*id].kind) {
            Some(TypeDefKind::Enum(e)) => e.cases.iter().map(|c| c.name.clone()).collect(),
            _ => {
                problems.push(format!("interface `types` (wit/types.wit) has no enum `{name}`"));
                continue;
            }
        };
        if got != want {
            problems.push(format!(
                "enum `{name}` (wit/types.wit) has the cases {got:?}, weir_sdk::abi has {want:?} (in value order from \
                 0): make them the same"
            ));
        }
    }
    fail_with(&problems, "enums");
}

/// A guest that exports `exports` with the WIT's signatures; each records its own call in the shared data
/// of its VM (key: its ABI name). The allocator is a bump allocator.
fn guest(marker: &str, exports: &[&Described]) -> String {
    let mut data = String::new();
    let mut funcs = String::new();
    let mut offset = 1024;
    let wat_types = |l: &[Core]| l.iter().map(|c| format!(" {}", format!("{c:?}").to_lowercase())).collect::<String>();
    for d in exports {
        let sig = d.signature.clone().expect("a core signature");
        let (params, results) = (wat_types(&sig.params), wat_types(&sig.results));
        let params = if params.is_empty() { String::new() } else { format!(" (param{params})") };
        let results = if results.is_empty() { String::new() } else { format!(" (result{results})") };
        let answer = match (d.abi.as_str(), sig.results.first()) {
            ("proxy_on_memory_allocate" | "malloc", _) => {
                "global.get $next global.get $next local.get 0 i32.add global.set $next".to_string()
            }
            (_, Some(c)) => format!("{}.const {}", format!("{c:?}").to_lowercase(), u8::from(d.returns_bool)),
            (_, None) => String::new(),
        };
        funcs += &format!(
            "  (func (export \"{}\"){params}{results} i32.const {offset} i32.const {} call $mark {answer})\n",
            d.abi,
            d.abi.len()
        );
        data += &d.abi;
        offset += d.abi.len();
    }
    format!(
        r#"(module
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 65536))
  (data (i32.const 1024) "{data}")
  (func $mark (param i32 i32) local.get 0 local.get 1 i32.const 0 i32.const 0 i32.const 0 call $set drop)
  (func (export "{marker}"))
{funcs})"#
    )
}

/// The callbacks Weir calls have the signatures the WIT gives them: a guest exporting each with the WIT's
/// signature gets every one called (the host silently skips an export whose signature differs), through
/// the host's own VM; the ABI 0.1.0 forms in a second guest.
#[test]
fn the_host_calls_every_callback_with_the_wit_signature() {
    let wit = Wit::read();
    let mut problems = Vec::new();
    let by_abi = |d: &&Described| d.signature.is_some() && !d.abi.starts_with("proxy_abi_version_");
    // ABI 0.2.1: everything but the 0.1.0 forms, `_start` (`_initialize` wins) and `malloc`.
    let current: Vec<&Described> = wit
        .exports
        .iter()
        .filter(by_abi)
        .filter(|d| d.interface != LEGACY_CALLBACKS && !["_start", "malloc"].contains(&d.abi.as_str()))
        .collect();
    // ABI 0.1.0: the 0.1.0 header callbacks, `_start` without `_initialize`, `malloc` without the other.
    let legacy_names: BTreeSet<&str> =
        wit.exports.iter().filter(|d| d.interface == LEGACY_CALLBACKS).map(|d| d.abi.as_str()).collect();
    let old: Vec<&Described> = wit
        .exports
        .iter()
        .filter(by_abi)
        .filter(|d| d.interface == LEGACY_CALLBACKS || !legacy_names.contains(d.abi.as_str()))
        .filter(|d| !["_initialize", "main", "proxy_on_memory_allocate"].contains(&d.abi.as_str()))
        .collect();
    let host = host_shared();
    let runtime = WasmRuntime::new(Limits::default(), host.clone()).expect("runtime");
    for (marker, exports) in [("proxy_abi_version_0_2_1", current), ("proxy_abi_version_0_1_0", old)] {
        let wat = guest(marker, &exports);
        let vm_id: Arc<str> = Arc::from(marker);
        let module = runtime.load(marker, wat.as_bytes()).unwrap_or_else(|e| panic!("{marker} guest loads: {e}"));
        let mut vm = Vm::start(&runtime, module, 0, vm_id.clone(), Arc::from(&b"vm"[..]))
            .unwrap_or_else(|e| panic!("{marker} guest starts: {e}"));
        let plugin = PluginInfo { vm_id: vm_id.clone(), ..PluginInfo::default() };
        let root = vm.create_root(Arc::from("wit/test"), plugin, Arc::from(&b"config"[..])).expect("root context");
        let stream = vm.create_http_context(root, None).expect("stream context");
        vm.on_request_headers(stream, Default::default(), false).expect("request headers");
        vm.on_body(stream, true, b"body".to_vec(), false).map_err(|(e, _)| e).expect("request body");
        vm.on_trailers(stream, true, Default::default(), None).expect("request trailers");
        vm.on_response_headers(stream, Default::default(), false).expect("response headers");
        vm.on_body(stream, false, b"body".to_vec(), false).map_err(|(e, _)| e).expect("response body");
        vm.on_trailers(stream, false, Default::default(), None).expect("response trailers");
        vm.on_tick(root).expect("tick");
        vm.on_queue_ready(root, 1).expect("queue ready");
        vm.on_http_call_response(root, 4, (0, 0, 0)).expect("callout answer");
        vm.finish_http_context(stream).expect("end of stream");
        // The allocator is called only to hand a value over; the host checked its signature at start.
        let called = |name: &str| name == vm.module().allocator || host.data.get(&vm_id, name.as_bytes()).is_some();
        for d in &exports {
            let never = NEVER_CALLED.contains(&d.abi.as_str());
            let sig = d.signature.clone().expect("a core signature");
            if called(&d.abi) == never {
                problems.push(if never {
                    format!(
                        "{marker} guest: the host called {} although the WIT says Weir never calls it: update its docs \
                         in {} and NEVER_CALLED",
                        d.abi,
                        file_of(&d.interface)
                    )
                } else {
                    format!(
                        "{marker} guest: the host never called {} exported as {sig} (`{}` in interface `{}`, {}): the \
                         host calls it with another signature (fix the WIT), or no longer calls it (say so in its docs \
                         and add it to NEVER_CALLED)",
                        d.abi,
                        d.wit,
                        d.interface,
                        file_of(&d.interface)
                    )
                });
            }
        }
    }
    fail_with(&problems, "callback signatures");
}
