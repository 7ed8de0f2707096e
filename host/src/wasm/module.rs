//! A compiled, checked module: the ABI version it declares, the exports the host needs, and imports only
//! from `env` (the proxy-wasm hostcalls) and WASI preview 1.

use crate::abi::hostcalls::capabilities::{self, Allowed};
use crate::abi::VmState;
use wasmtime::{
    AsContextMut, Engine, ExternType, Instance, InstancePre, Linker, Module, TypedFunc, WasmParams, WasmResults,
};
use weir_sdk::abi::AbiVersion;

/// Why a module cannot be loaded. Each names the module and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a valid WebAssembly module.
    #[error("module {module}: not a valid WebAssembly module: {detail}")]
    Invalid {
        /// Module name.
        module: String,
        /// What the compiler said.
        detail: String,
    },
    /// No `proxy_abi_version_*` export.
    #[error("module {module}: no proxy-wasm ABI version export (expected one of proxy_abi_version_0_2_1, proxy_abi_version_0_2_0, proxy_abi_version_0_1_0); is it built with a proxy-wasm SDK?")]
    NoAbiVersion {
        /// Module name.
        module: String,
    },
    /// A required export is missing.
    #[error("module {module}: missing export {export}: {why}")]
    MissingExport {
        /// Module name.
        module: String,
        /// The export.
        export: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// An import from a module other than `env` or WASI.
    #[error("module {module}: imports {from}.{name}, but filters may import only from env (proxy-wasm) and wasi_snapshot_preview1 / wasi_unstable")]
    ForeignImport {
        /// Module name.
        module: String,
        /// The import's module.
        from: String,
        /// The import's name.
        name: String,
    },
    /// An import the host does not provide.
    #[error("module {module}: imports {from}.{name}, which Weir does not provide")]
    UnknownImport {
        /// Module name.
        module: String,
        /// The import's module.
        from: String,
        /// The import's name.
        name: String,
    },
    /// Linking failed otherwise (e.g. an import with the wrong signature).
    #[error("module {module}: cannot be linked: {detail}")]
    Link {
        /// Module name.
        module: String,
        /// What the linker said.
        detail: String,
    },
}

/// A module ready to instantiate.
pub struct LoadedModule {
    /// Name for logs.
    pub name: String,
    /// sha256 of the bytes, hex.
    pub digest: String,
    /// The ABI version it declares.
    pub abi: AbiVersion,
    /// Which allocator export to use.
    pub allocator: &'static str,
    /// Pre-linked, ready for a store.
    pub pre: InstancePre<VmState>,
    /// The capability allow-list it is linked for (`None`: everything allowed).
    pub capabilities: Option<Allowed>,
}

impl LoadedModule {
    /// Compiles `bytes` and checks exports and imports.
    pub fn compile(
        engine: &Engine,
        linker: &Linker<VmState>,
        name: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<LoadedModule, LoadError> {
        let module = Module::new(engine, bytes)
            .map_err(|e| LoadError::Invalid { module: name.to_string(), detail: format!("{e:#}") })?;
        let abi = module
            .exports()
            .find_map(|e| {
                matches!(e.ty(), ExternType::Func(_)).then(|| AbiVersion::from_export_name(e.name())).flatten()
            })
            .ok_or_else(|| LoadError::NoAbiVersion { module: name.to_string() })?;
        if !module.exports().any(|e| e.name() == "memory" && matches!(e.ty(), ExternType::Memory(_))) {
            return Err(LoadError::MissingExport {
                module: name.to_string(),
                export: "memory",
                why: "the host reads and writes guest memory through it",
            });
        }
        let has_func = |n: &str| module.exports().any(|e| e.name() == n && matches!(e.ty(), ExternType::Func(_)));
        let allocator = if has_func("proxy_on_memory_allocate") {
            "proxy_on_memory_allocate"
        } else if has_func("malloc") {
            "malloc"
        } else {
            return Err(LoadError::MissingExport {
                module: name.to_string(),
                export: "proxy_on_memory_allocate",
                why: "the host allocates the values it returns in guest memory (malloc would do too)",
            });
        };
        for import in module.imports() {
            let from = import.module();
            if !matches!(from, "env" | "wasi_snapshot_preview1" | "wasi_unstable") {
                return Err(LoadError::ForeignImport {
                    module: name.to_string(),
                    from: from.to_string(),
                    name: import.name().to_string(),
                });
            }
        }
        let pre = linker.instantiate_pre(&module).map_err(|e| {
            let detail = format!("{e:#}");
            match module.imports().find(|i| detail.contains(&format!("{}::{}", i.module(), i.name()))) {
                Some(i) if detail.contains("unknown import") => LoadError::UnknownImport {
                    module: name.to_string(),
                    from: i.module().to_string(),
                    name: i.name().to_string(),
                },
                _ => LoadError::Link { module: name.to_string(), detail },
            }
        })?;
        Ok(LoadedModule { name: name.to_string(), digest: digest.to_string(), abi, allocator, pre, capabilities: None })
    }

    /// The same module linked for an allow-list: imports it leaves out are stubs (ABI §5.13).
    pub fn restricted(&self, linker: &Linker<VmState>, allowed: &Allowed) -> Result<LoadedModule, LoadError> {
        let link = |e: wasmtime::Error| LoadError::Link { module: self.name.clone(), detail: format!("{e:#}") };
        let module = self.pre.module();
        let restricted = capabilities::restricted_linker(linker, module, allowed).map_err(link)?;
        let pre = restricted.instantiate_pre(module).map_err(link)?;
        Ok(LoadedModule {
            name: self.name.clone(),
            digest: self.digest.clone(),
            abi: self.abi,
            allocator: self.allocator,
            pre,
            capabilities: Some(allowed.clone()),
        })
    }

    /// Whether the host may call callback (export) `name`: a callback an allow-list leaves out is treated as
    /// absent. The allocator and start functions are never restricted.
    pub fn allows_callback(&self, name: &str) -> bool {
        match &self.capabilities {
            Some(allowed) => !capabilities::CALLBACKS.contains(&name) || allowed.contains(name),
            None => true,
        }
    }

    /// The callback (export) `name` of `instance`, if the module exports it with this signature and its
    /// capabilities allow it.
    pub fn callback<P: WasmParams, R: WasmResults>(
        &self,
        instance: &Instance,
        store: impl AsContextMut,
        name: &str,
    ) -> Option<TypedFunc<P, R>> {
        if !self.allows_callback(name) {
            return None;
        }
        instance.get_typed_func(store, name).ok()
    }
}
