#!/usr/bin/env bash
# Builds the C example filter: build.sh OUT.wasm
# Toolchain: Debian's clang, lld, wasi-libc and the wasm32 compiler-rt builtins, installed with apt-get when missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT.wasm}"
packages="clang lld wasi-libc libclang-rt-14-dev-wasm32"

have_toolchain() {
  command -v clang >/dev/null && command -v wasm-ld >/dev/null && [ -f /usr/lib/wasm32-wasi/libc.a ] \
    && ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1
}
if ! have_toolchain; then
  echo "build.sh: installing $packages with apt-get" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $packages; } >&2 \
     || ! have_toolchain; then
    echo "build.sh: could not install the C toolchain: run 'apt-get install $packages' (Debian 12)" >&2
    exit 1
  fi
fi
mkdir -p "$(dirname "$out")"
# -mexec-model=reactor: a library-style module whose `_initialize` runs wasi-libc's constructors (no main).
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
  -Wl,--strip-all -o "$out" "$here/example.c"
