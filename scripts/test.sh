#!/usr/bin/env bash
# Runs every test: installs what is missing, builds with warnings as errors,
# checks the C++ formatting (.clang-format), runs the CTest suites (unit,
# fixture, integration, fidelity), then the fuzzer for a bounded time. Exits
# non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export BUILD_DIR

EXITREC_WERROR=ON "$ROOT/scripts/build.sh"

echo "== format"
"$ROOT/scripts/format-check.sh"

echo "== ctest"
ctest_log="$BUILD_DIR/ctest-summary.log"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 600 | tee "$ctest_log"

fuzz_result="not run"
if [ -x "$ROOT/scripts/fuzz.sh" ]; then
  echo "== fuzz"
  FUZZ_SECONDS="${FUZZ_SECONDS:-60}" "$ROOT/scripts/fuzz.sh"
  fuzz_result="clean"
fi

# One closing line with the totals (ctest's own summary scrolls away behind
# the fuzzer's output). Reached only when everything passed (set -e).
total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$ctest_log" | tail -1)
failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$ctest_log" | tail -1)
echo "fuzz: $fuzz_result"
echo "tests: $(( ${total:-0} - ${failed:-0} )) passed, ${failed:-0} failed"
