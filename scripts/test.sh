#!/usr/bin/env bash
# Runs every test: installs what is missing, builds with warnings as errors,
# runs the CTest suites (unit, fixture, integration, fidelity), then the
# fuzzer for a bounded time. Exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export BUILD_DIR

EXITREC_WERROR=ON "$ROOT/scripts/build.sh"

echo "== ctest"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 600

if [ -x "$ROOT/scripts/fuzz.sh" ]; then
  echo "== fuzz"
  FUZZ_SECONDS="${FUZZ_SECONDS:-60}" "$ROOT/scripts/fuzz.sh"
fi
