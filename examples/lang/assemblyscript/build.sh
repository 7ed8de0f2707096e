#!/usr/bin/env bash
# Builds the AssemblyScript example filter: build.sh OUT.wasm
# Toolchain: Node.js and npm (Debian's nodejs and npm packages when missing), then the AssemblyScript compiler
# pinned in package-lock.json (npm ci, into node_modules/ beside this script).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT.wasm}"

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "build.sh: installing nodejs and npm with apt-get" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm; } >&2; then
    echo "build.sh: could not install Node.js: run 'apt-get install nodejs npm' (Node.js 20 or later: AssemblyScript 0.28 needs it)" >&2
    exit 1
  fi
fi
cd "$here"
wanted="$(node -p 'require("./package-lock.json").packages["node_modules/assemblyscript"].version')"
have="$(node -p 'try { require("./node_modules/assemblyscript/package.json").version } catch (e) { "" }')"
if [ "$have" != "$wanted" ]; then
  echo "build.sh: installing assemblyscript@$wanted with npm ci" >&2
  if ! npm ci --no-audit --no-fund --loglevel=error >&2; then
    echo "build.sh: could not install AssemblyScript: run 'npm ci' in $here" >&2
    exit 1
  fi
fi
mkdir -p "$(dirname "$out")"
node node_modules/assemblyscript/bin/asc.js assembly/index.ts --config asconfig.json -o "$out"
