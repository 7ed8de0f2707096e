//! Building filter crates for `wasm32-wasip1` from a build script, shared by `host/build.rs` (the shipped filters,
//! embedded in the `weir` binary) and `tests/build.rs` (the test filters), included by each with `#[path]`.
//!
//! The modules go to `<target dir>/wasm-filters` (`$CARGO_TARGET_DIR/wasm-filters` when that is set), so the nested
//! build never fights the outer one over a lock, and `cargo clean` removes them. Both scripts build the shipped
//! filters with the same command into the same folder: whichever runs second finds them fresh.

#![allow(dead_code)] // each script uses its part

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The filters' target.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// `(folder, manifest path, manifest text)` of each folder of `dir` that holds a `Cargo.toml`.
pub fn manifests(dir: &Path) -> Vec<(String, PathBuf, String)> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.expect("reading a filters folder").path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
        let dir_name = path.file_name().and_then(OsStr::to_str).expect("UTF-8 folder name").to_owned();
        out.push((dir_name, manifest, text));
    }
    out
}

/// `(folder, package name, lib name)` of every shipped filter crate in the root `filters/`, sorted by package.
pub fn shipped_crates(filters_dir: &Path) -> Vec<(String, String, String)> {
    let mut crates: Vec<(String, String, String)> = manifests(filters_dir)
        .into_iter()
        .map(|(dir_name, manifest, text)| {
            let package = package_name(&text, &manifest);
            let lib = table_value(&text, "[lib]", "name").unwrap_or_else(|| package.replace('-', "_"));
            (dir_name, package, lib)
        })
        .collect();
    crates.sort_by(|a, b| a.1.cmp(&b.1));
    crates
}

/// `(folder, package name)` of every crate in `filters/`, sorted by package name: each folder with a
/// `Cargo.toml` (the workspace's `members` must list the same folders, or the nested cargo refuses).
pub fn filter_crates(filters_dir: &Path) -> Vec<(String, String)> {
    assert!(filters_dir.is_dir(), "reading {}: not a folder", filters_dir.display());
    let mut crates: Vec<(String, String)> = manifests(filters_dir)
        .into_iter()
        .map(|(dir_name, manifest, text)| (dir_name, package_name(&text, &manifest)))
        .collect();
    assert!(!crates.is_empty(), "no filter crates under {}", filters_dir.display());
    crates.sort_by(|a, b| a.1.cmp(&b.1));
    crates
}

/// The `name` of the `[package]` table, read line by line (no TOML parser among build-dependencies).
pub fn package_name(manifest_text: &str, manifest: &Path) -> String {
    table_value(manifest_text, "[package]", "name")
        .unwrap_or_else(|| panic!("no [package] name in {}", manifest.display()))
}

/// The string value of `key` in `table` (`[lib]`), read line by line.
pub fn table_value(manifest_text: &str, table: &str, key: &str) -> Option<String> {
    let mut in_table = false;
    for line in manifest_text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == table;
        } else if in_table {
            if let Some(value) = line.strip_prefix(key).map(str::trim_start).and_then(|r| r.strip_prefix('=')) {
                return Some(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// Reruns this script when the filters' sources change. The folder is tracked piecewise, not as a whole,
/// so that a `filters/target/` left by a standalone `cargo build` there is not scanned on every build.
pub fn track_sources(filters_dir: &Path, crates: &[(String, String)]) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", filters_dir.join(file).display());
    }
    for (dir_name, _) in crates {
        println!("cargo:rerun-if-changed={}", filters_dir.join(dir_name).display());
    }
}

/// Installs the `wasm32-wasip1` standard library through rustup when the sysroot lacks it.
pub fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = &sysroot {
        if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
            return;
        }
    }
    // rustup picks the same toolchain as this build through RUSTUP_TOOLCHAIN, which cargo passes on.
    match Command::new("rustup").args(["target", "add", WASM_TARGET]).status() {
        Ok(status) if status.success() => {}
        Ok(status) => println!(
            "cargo:warning=`rustup target add {WASM_TARGET}` failed ({status}); the filter build below needs that target"
        ),
        Err(e) => println!(
            "cargo:warning=rustup not found ({e}) and {WASM_TARGET} is not in the sysroot {sysroot:?}: \
             install the {WASM_TARGET} standard library for this toolchain"
        ),
    }
}

/// `$CARGO_TARGET_DIR/wasm-filters` (a relative one is matched against OUT_DIR), else
/// `<outer target dir>/wasm-filters`, the target dir found by walking up from OUT_DIR
/// (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`) to the nearest folder named `target`.
pub fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return dir.join("wasm-filters");
        }
        // Relative to where cargo was started, which this script cannot see: OUT_DIR lies below it.
        if let Some(found) = out_dir.ancestors().find(|a| a.ends_with(&dir)) {
            return found.join("wasm-filters");
        }
    }
    let target = out_dir
        .ancestors()
        .find(|a| a.file_name() == Some(OsStr::new("target")))
        .or_else(|| out_dir.ancestors().find(|a| a.join("CACHEDIR.TAG").is_file()))
        .or_else(|| out_dir.ancestors().nth(4))
        .unwrap_or_else(|| panic!("cannot find the target dir above OUT_DIR {}", out_dir.display()));
    target.join("wasm-filters")
}

/// `cargo build <profile args> --target wasm32-wasip1` of a workspace; panics with cargo's output on failure.
pub fn build_filters(workspace_manifest: &Path, target_dir: &Path, profile: &[&str]) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .args(profile)
        .args(["--target", WASM_TARGET, "--manifest-path"])
        .arg(workspace_manifest)
        .arg("--target-dir")
        .arg(target_dir);
    // What the outer cargo set for this build script (or inherited) and that would leak into the nested
    // build: flags and target of the host build, a clippy/check wrapper, the outer package's metadata.
    // Kept: RUSTFLAGS (user flags), RUSTC / RUSTC_WRAPPER (same compiler, sccache), and
    // MAKEFLAGS / CARGO_MAKEFLAGS so the nested cargo takes its jobs from the outer jobserver.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let drop = matches!(
            key,
            "CARGO_ENCODED_RUSTFLAGS"
                | "CARGO_BUILD_TARGET"
                | "CARGO_TARGET_DIR"
                | "CARGO_BUILD_TARGET_DIR"
                | "CARGO_BUILD_BUILD_DIR"
                | "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTC_LINKER"
                | "OUT_DIR"
                | "TARGET"
                | "HOST"
                | "PROFILE"
                | "OPT_LEVEL"
                | "DEBUG"
                | "NUM_JOBS"
        ) || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("DEP_");
        if drop {
            command.env_remove(key);
        }
    }
    let output = command.output().unwrap_or_else(|e| panic!("running the nested cargo: {e}"));
    if !output.status.success() {
        panic!(
            "building the filters failed ({}):\n{:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            output.status,
            command,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout),
        );
    }
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        if line.trim_start().starts_with("warning") {
            println!("cargo:warning={}: {line}", workspace_manifest.display());
        }
    }
}

/// Leaves the file (and its mtime) alone when the text is the same, so dependants do not rebuild.
pub fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

/// A shipped filter crate of the root workspace's `filters/`, built.
pub struct Shipped {
    /// Its folder in `filters/` (`jwt-auth`): the name it is published under.
    pub dir_name: String,
    /// The package name (`weir-filter-jwt-auth`).
    pub package: String,
    /// The `[lib] name` (`jwt_auth`), the module's file stem.
    pub lib: String,
    /// The package description.
    pub description: String,
    /// The built module.
    pub wasm: PathBuf,
}

/// Builds every shipped filter of `<root>/filters` (each folder with a `Cargo.toml`, a member of the root
/// workspace) with `--profile filter` into `target_dir`, checks each module, and prints the lines that rerun the
/// calling script when a filter, `sdk/` or the root manifest or lock changes.
pub fn build_shipped(root: &Path, target_dir: &Path) -> Vec<Shipped> {
    let shipped_dir = root.join("filters");
    for file in ["Cargo.toml", "Cargo.lock", "sdk"] {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let mut crates: Vec<Shipped> = manifests(&shipped_dir)
        .into_iter()
        .map(|(dir_name, manifest, text)| {
            println!("cargo:rerun-if-changed={}", shipped_dir.join(&dir_name).display());
            let package = package_name(&text, &manifest);
            let lib = table_value(&text, "[lib]", "name").unwrap_or_else(|| package.replace('-', "_"));
            let description = table_value(&text, "[package]", "description").unwrap_or_default();
            let wasm = target_dir.join(WASM_TARGET).join("filter").join(format!("{lib}.wasm"));
            Shipped { dir_name, package, lib, description, wasm }
        })
        .collect();
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    if crates.is_empty() {
        return crates;
    }
    let mut args = vec!["--profile", "filter"];
    for c in &crates {
        args.extend(["-p", c.package.as_str()]);
    }
    build_filters(&root.join("Cargo.toml"), target_dir, &args);
    for c in &crates {
        let bytes =
            fs::read(&c.wasm).unwrap_or_else(|e| panic!("the shipped build did not produce {}: {e}", c.wasm.display()));
        assert!(bytes.starts_with(b"\0asm"), "{} is not a WebAssembly module", c.wasm.display());
    }
    crates
}
