//! Which proxy-wasm ABI a module declares: the `proxy_abi_version_*` function it exports.

use super::ArtifactError;
use wasmparser::{ExternalKind, Parser, Payload};

/// The ABI markers Weir knows, newest first: export name, version written in [`super::ArtifactMeta::abi`].
pub const ABI_EXPORTS: &[(&str, &str)] =
    &[("proxy_abi_version_0_2_1", "0.2.1"), ("proxy_abi_version_0_2_0", "0.2.0"), ("proxy_abi_version_0_1_0", "0.1.0")];

/// The ABI version (`"0.2.1"`, `"0.2.0"`, `"0.1.0"`) the module declares by exporting exactly one
/// `proxy_abi_version_*` function.
///
/// Only the module's header and export section are read; the code is not validated (the runtime does that
/// when it loads the module).
pub fn detect(wasm: &[u8]) -> Result<&'static str, ArtifactError> {
    if !wasm.starts_with(b"\0asm") {
        return Err(ArtifactError::NotWasm {
            reason: "it does not start with the WebAssembly magic bytes \\0asm".into(),
        });
    }
    let mut found: Vec<&'static str> = Vec::new();
    let mut saw_header = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| ArtifactError::NotWasm { reason: e.message().to_string() })?;
        match payload {
            Payload::Version { encoding, .. } => {
                if encoding != wasmparser::Encoding::Module {
                    return Err(ArtifactError::NotWasm {
                        reason: "it is a component, not a core module (proxy-wasm filters are core modules)".into(),
                    });
                }
                saw_header = true;
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| ArtifactError::NotWasm { reason: e.message().to_string() })?;
                    if export.kind != ExternalKind::Func {
                        continue;
                    }
                    if let Some((_, version)) = ABI_EXPORTS.iter().find(|(name, _)| *name == export.name) {
                        found.push(version);
                    }
                }
            }
            // Everything else (function bodies included) is skipped: only the exports matter here.
            _ => {}
        }
    }
    if !saw_header {
        return Err(ArtifactError::NotWasm { reason: "empty input".into() });
    }
    match found.as_slice() {
        [] => Err(ArtifactError::NoAbi),
        [one] => Ok(one),
        many => Err(ArtifactError::ManyAbis {
            found: many
                .iter()
                .map(|v| format!("proxy_abi_version_{}", v.replace('.', "_")))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_wasm() {
        for input in [&b""[..], b"not wasm at all", b"\0asm"] {
            assert!(matches!(detect(input), Err(ArtifactError::NotWasm { .. })), "{input:?}");
        }
    }
}
