//! `weir filter new NAME`: scaffolds a filter crate from the templates in `filter_template/`.
//!
//! The crate depends on `weir-sdk` (and, for its wasm tests, on `weir`) by path: by default the `sdk/` and `host/`
//! folders of the checkout this binary was built from (`CARGO_MANIFEST_DIR` at compile time), else `--sdk-path` and
//! `--weir-path`. The checkout's `Cargo.lock` is copied in, so the crate resolves the versions Weir was tested with
//! (and a shared `CARGO_TARGET_DIR` reuses Weir's compiled dependencies).

use super::FilterNewArgs;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The files of a new crate: path in the crate, template.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("filter_template/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("filter_template/lib.rs.tmpl")),
    ("src/tests.rs", include_str!("filter_template/tests.rs.tmpl")),
    ("tests/wasm.rs", include_str!("filter_template/wasm.rs.tmpl")),
    ("README.md", include_str!("filter_template/README.md.tmpl")),
    ("weir.json", include_str!("filter_template/weir.json.tmpl")),
    (".gitignore", "/target\n"),
];

/// Rust's keywords (strict and reserved, 2021 edition): not usable as a crate name.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names that clash with a crate the filter links (Rust's own, or Weir's) or with cargo's output folders.
const RESERVED: &[&str] =
    &["std", "core", "alloc", "proc_macro", "test", "weir", "weir_sdk", "deps", "examples", "build", "incremental"];

pub(super) fn new(args: FilterNewArgs) -> ExitCode {
    match scaffold(&args) {
        Ok(root) => {
            let files: Vec<&str> = FILES.iter().map(|(path, _)| *path).collect();
            println!("created filter crate {} in {}: {}", args.name, root.display(), files.join(", "));
            println!();
            println!("  cd {}", root.display());
            println!("  rustup target add wasm32-wasip1                # once");
            println!(
                "  cargo build --release --target wasm32-wasip1   # target/wasm32-wasip1/release/{}.wasm",
                lib_name(&args.name)
            );
            println!(
                "  cargo test                                     # the fake host, then the .wasm in Weir's runtime"
            );
            println!();
            println!("README.md says how to attach it to a route (weir.json is a configuration that does).");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// The crate's library name: `.wasm` file stem and Rust path.
fn lib_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Why `name` cannot be a crate name, if it cannot.
fn invalid_name(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Some(format!("{c:?} is not allowed"));
    }
    if !first.is_ascii_alphabetic() {
        return Some(format!("it starts with {first:?}"));
    }
    let lib = lib_name(name);
    if KEYWORDS.contains(&lib.as_str()) {
        return Some("it is a Rust keyword".into());
    }
    if RESERVED.contains(&lib.as_str()) {
        return Some("it is the name of a crate the filter links or of a cargo output folder".into());
    }
    None
}

/// Creates the crate; returns its folder, or the message for the user.
fn scaffold(args: &FilterNewArgs) -> Result<PathBuf, String> {
    let name = args.name.as_str();
    if let Some(reason) = if name.is_empty() { Some("it is empty".to_string()) } else { invalid_name(name) } {
        return Err(format!(
            "{name:?} is not a valid crate name: {reason}; use letters, digits, '-' and '_', starting with a letter \
             (e.g. my-filter)"
        ));
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sdk = crate_dir(args.sdk_path.as_deref(), &checkout.join("..").join("sdk"), "--sdk-path", "sdk")?;
    let weir = crate_dir(args.weir_path.as_deref(), checkout, "--weir-path", "host")?;

    let root = args.dir.join(name);
    if root.exists() {
        return Err(format!("{} already exists; choose another NAME or --dir, or remove it", root.display()));
    }
    if args.dir.exists() && !args.dir.is_dir() {
        return Err(format!(
            "--dir {} is a file, not a folder; give a folder (it is created if missing)",
            args.dir.display()
        ));
    }
    let cannot =
        |e: io::Error| format!("cannot create {}: {e}; --dir must name a folder you can write to", root.display());
    fs::create_dir_all(&args.dir).map_err(cannot)?;
    fs::create_dir(&root).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => {
            format!("{} already exists; choose another NAME or --dir, or remove it", root.display())
        }
        _ => cannot(e),
    })?;
    let written = write_files(&root, name, &sdk, &weir);
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&root);
        return Err(cannot(e));
    }
    Ok(root)
}

/// A crate folder: the one given (which must hold a Cargo.toml), else the default from the build.
fn crate_dir(given: Option<&Path>, default: &Path, flag: &str, folder: &str) -> Result<PathBuf, String> {
    let dir = given.unwrap_or(default);
    match dir.join("Cargo.toml").is_file() {
        true => dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display())),
        false if given.is_some() => {
            Err(format!("{flag} {}: no Cargo.toml there; give the {folder}/ folder of a Weir checkout", dir.display()))
        }
        false => Err(format!(
            "{} (where this weir was built from) has no Cargo.toml; pass {flag} with the {folder}/ folder of a Weir \
             checkout",
            dir.display()
        )),
    }
}

fn write_files(root: &Path, name: &str, sdk: &Path, weir: &Path) -> io::Result<()> {
    let lib = lib_name(name);
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{lib}}", &lib)
            .replace("{{sdk_path}}", &toml_string(sdk))
            .replace("{{weir_path}}", &toml_string(weir))
    };
    for (path, template) in FILES {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, fill(template))?;
    }
    // The versions Weir was tested with: cargo keeps those the crate uses and drops the rest.
    if let Some(lock) = weir.ancestors().map(|d| d.join("Cargo.lock")).find(|l| l.is_file()) {
        fs::copy(lock, root.join("Cargo.lock"))?;
    }
    Ok(())
}

/// A path as the inside of a TOML basic string.
fn toml_string(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::invalid_name;

    #[test]
    fn crate_names() {
        for ok in ["demo", "my-filter", "a_b", "f1", "Auth"] {
            assert_eq!(invalid_name(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("1st", "it starts with '1'"),
            ("-x", "it starts with '-'"),
            ("my filter", "' ' is not allowed"),
            ("é", "'é' is not allowed"),
            ("fn", "it is a Rust keyword"),
            ("weir-sdk", "it is the name of a crate the filter links or of a cargo output folder"),
        ] {
            assert_eq!(invalid_name(bad).as_deref(), Some(why), "{bad}");
        }
    }
}
