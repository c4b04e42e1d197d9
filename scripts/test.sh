#!/usr/bin/env bash
# Runs every test: installs what is missing, builds with warnings as errors,
# checks the C++ formatting (.clang-format), runs the CTest suites (unit,
# fixture, integration, fidelity, e2e), the threaded suites under
# ThreadSanitizer and under AddressSanitizer+UBSan (scripts/sanitize.sh, own
# build dirs), then the fuzzer for a bounded time. Exits non-zero on any
# failure; ends with the duration of each part. SANITIZE=0 skips the
# sanitizer builds (a quicker local loop; CI runs them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export BUILD_DIR

timings=()
stage_start=$SECONDS
stage_done() { timings+=("$1 $((SECONDS - stage_start)) s"); stage_start=$SECONDS; }

EXITREC_WERROR=ON "$ROOT/scripts/build.sh"
stage_done build

echo "== format"
"$ROOT/scripts/format-check.sh"
stage_done format

echo "== ctest"
ctest_log="$BUILD_DIR/ctest-summary.log"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 600 | tee "$ctest_log"
stage_done ctest

sanitizers="not run (SANITIZE=0)"
if [ "${SANITIZE:-1}" != 0 ]; then
  echo "== ThreadSanitizer"
  "$ROOT/scripts/sanitize.sh" thread
  stage_done tsan
  echo "== AddressSanitizer + UBSan"
  "$ROOT/scripts/sanitize.sh" address
  stage_done asan
  sanitizers="clean"
fi

fuzz_result="not run"
if [ -x "$ROOT/scripts/fuzz.sh" ]; then
  echo "== fuzz"
  FUZZ_SECONDS="${FUZZ_SECONDS:-150}" "$ROOT/scripts/fuzz.sh"  # four targets share it
  fuzz_result="clean"
  stage_done fuzz
fi

# One closing line with the totals (ctest's own summary scrolls away behind
# the fuzzer's output). Reached only when everything passed (set -e).
total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$ctest_log" | tail -1)
failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$ctest_log" | tail -1)
echo "fuzz: $fuzz_result"
echo "sanitizers: $sanitizers"
echo "durations: $(IFS=,; echo "${timings[*]}" | sed 's/,/, /g')"
echo "tests: $(( ${total:-0} - ${failed:-0} )) passed, ${failed:-0} failed"
