//! A guest for hostcall tests: a module that imports the named `env` hostcalls and exports a wrapper for
//! each under the same name (a host function called straight from the host would see no guest memory),
//! plus one page of memory and a bump allocator from 0x8000.

use crate::abi::state::{VmIdentity, VmState};
use crate::abi::HostShared;
use std::sync::Arc;
use wasmtime::{Engine, Instance, Linker, Store, StoreLimits, Val};

/// A running test guest.
pub(crate) struct Guest {
    /// The store, whose state a test may arrange (contexts, streams).
    pub store: Store<VmState>,
    instance: Instance,
}

/// Where tests put their inputs.
pub(crate) const IN: u32 = 0x100;
/// Where tests point out-parameters.
pub(crate) const OUT: u32 = 0x10;
/// One past the end of guest memory: any pointer here is out of bounds.
pub(crate) const BAD: u32 = 0x1_0000;

impl Guest {
    /// A guest importing `calls` (name, params as `i`/`I` for i32/i64; each returns an i32 status).
    pub fn new(calls: &[(&str, &str)], host: Arc<HostShared>, vm_id: &str) -> Guest {
        let (mut imports, mut wrappers) = (String::new(), String::new());
        for (name, params) in calls {
            let types: Vec<&str> = params.chars().map(|c| if c == 'I' { "i64" } else { "i32" }).collect();
            let gets: String = (0..types.len()).map(|i| format!("local.get {i} ")).collect();
            let types = types.join(" ");
            imports += &format!("(import \"env\" \"{name}\" (func ${name} (param {types}) (result i32)))\n");
            wrappers += &format!("(func (export \"{name}\") (param {types}) (result i32) {gets}call ${name})\n");
        }
        let mut wat = format!("(module\n{imports}{wrappers}");
        wat += r#"(memory (export "memory") 1)
  (global $next (mut i32) (i32.const 0x8000))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    global.get $next
    global.get $next
    local.get $n
    i32.add
    global.set $next))"#;
        let engine = Engine::default();
        let module = wasmtime::Module::new(&engine, &wat).expect("test module");
        let mut linker = Linker::new(&engine);
        super::add_to_linker(&mut linker).expect("linker");
        let identity = VmIdentity { module: Arc::from("test"), digest: Arc::from("0"), worker: 0 };
        let state = VmState::new(identity, host, Arc::from(vm_id), StoreLimits::default(), Arc::from(&b""[..]));
        let mut store = Store::new(&engine, state);
        let instance = linker.instantiate(&mut store, &module).expect("instantiate");
        let alloc = instance.get_typed_func::<u32, u32>(&mut store, "proxy_on_memory_allocate").expect("allocator");
        store.data_mut().allocator = Some(alloc);
        Guest { store, instance }
    }

    /// Calls hostcall `name` with `args` and returns its status.
    pub fn call(&mut self, name: &str, args: &[Val]) -> i32 {
        let f = self.instance.get_func(&mut self.store, name).unwrap_or_else(|| panic!("{name} not imported"));
        let mut out = [Val::I32(-1)];
        f.call(&mut self.store, args, &mut out).unwrap_or_else(|e| panic!("{name} trapped: {e:#}"));
        out[0].unwrap_i32()
    }

    /// Writes `bytes` at `at` and returns `(ptr, len)` as call arguments.
    pub fn put(&mut self, at: u32, bytes: &[u8]) -> [Val; 2] {
        let memory = self.instance.get_memory(&mut self.store, "memory").expect("memory");
        memory.write(&mut self.store, at as usize, bytes).expect("in bounds");
        [Val::I32(at as i32), Val::I32(bytes.len() as i32)]
    }

    /// Reads `len` bytes at `at`.
    pub fn bytes(&mut self, at: u32, len: u32) -> Vec<u8> {
        let memory = self.instance.get_memory(&mut self.store, "memory").expect("memory");
        let mut out = vec![0; len as usize];
        memory.read(&self.store, at as usize, &mut out).expect("in bounds");
        out
    }

    /// Reads the little-endian u32 at `at`.
    pub fn u32_at(&mut self, at: u32) -> u32 {
        u32::from_le_bytes(self.bytes(at, 4).try_into().unwrap_or_default())
    }

    /// Reads the little-endian u64 at `at`.
    pub fn u64_at(&mut self, at: u32) -> u64 {
        u64::from_le_bytes(self.bytes(at, 8).try_into().unwrap_or_default())
    }

    /// The value a hostcall returned through the out-parameters `(ptr at OUT, len at OUT + 4)`.
    pub fn returned(&mut self) -> Vec<u8> {
        let (ptr, len) = (self.u32_at(OUT), self.u32_at(OUT + 4));
        if ptr == 0 {
            assert_eq!(len, 0, "a null pointer comes with length 0");
            return Vec::new();
        }
        self.bytes(ptr, len)
    }

    /// Poisons the out-parameters so a test sees whether a call wrote them.
    pub fn clear_out(&mut self) {
        self.put(OUT, &[0xee; 16]);
    }
}

/// An i32 call argument.
pub(crate) fn i(v: u32) -> Val {
    Val::I32(v as i32)
}

/// A fresh process-wide state.
pub(crate) fn host() -> Arc<HostShared> {
    HostShared::new(Arc::new(crate::telemetry::metrics::Metrics::new()))
}
