#!/usr/bin/env bash
# Builds the Rust (crates.io proxy-wasm) example filter: build.sh OUT.wasm
# Needs: cargo and the wasm32-wasip1 target (installed with rustup when missing).
# Cargo builds in $WEIR_LANG_TARGET_DIR/<this folder> (default <repo>/target/lang-examples/<this folder>).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT.wasm}"
target_dir="${WEIR_LANG_TARGET_DIR:-$here/../../../target/lang-examples}/rust-proxy-wasm"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  rustup target add wasm32-wasip1 >&2 || { echo "build.sh: could not install the Rust target: run 'rustup target add wasm32-wasip1'" >&2; exit 1; }
fi
cargo build --quiet --locked --release --target wasm32-wasip1 --manifest-path "$here/Cargo.toml" --target-dir "$target_dir"
mkdir -p "$(dirname "$out")"
cp "$target_dir/wasm32-wasip1/release/example_proxy_wasm.wasm" "$out"
