#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the product's sources, using the
# compile_commands.json of build/ (or $BUILD_DIR; scripts/build.sh makes it).
# Not part of scripts/test.sh: it takes several minutes on two cores. Exits
# non-zero when any check warns on our code.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"

if ! command -v run-clang-tidy >/dev/null; then
  echo "tidy: run-clang-tidy not found (Debian package clang-tidy)" >&2
  exit 2
fi
if [ ! -f "$BUILD_DIR/compile_commands.json" ]; then
  echo "tidy: $BUILD_DIR/compile_commands.json missing; run scripts/build.sh first" >&2
  exit 2
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run-clang-tidy -p "$BUILD_DIR" -j "$(nproc)" -quiet \
  "$ROOT/(engine|controller|k8sclient|metrics|webhook|common|sim|sandbox)/" 2>&1 |
  sed 's/\x1b\[[0-9;]*m//g' >"$log" || true  # run-clang-tidy always asks for colour
# Warnings in system headers are counted ("N warnings generated") but not
# shown; only ours are printed with a file:line: prefix.
if grep -E "^$ROOT/[^:]+:[0-9]+:[0-9]+: (warning|error):" "$log"; then
  echo "tidy: clang-tidy warned on the lines above" >&2
  exit 1
fi
echo "tidy: clean ($(grep -c '^clang-tidy' "$log") files)"
