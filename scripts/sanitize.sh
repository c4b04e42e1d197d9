#!/usr/bin/env bash
# Builds and runs the threaded suites under one sanitizer, in a build dir of
# its own with only the targets they need (no benchmarks, no fuzzers; -O1 -g1
# to keep the compile short):
#
#   scripts/sanitize.sh thread    ThreadSanitizer        -> build-tsan/
#   scripts/sanitize.sh address   AddressSanitizer+UBSan -> build-asan/
#
# Suites: k8sclient, controller, webhook (unit and end to end) and the e2e
# tests of `exit-reconciler run` (the controller binary is built with the same
# sanitizer, so its reports fail the e2e test through its exit code). Any
# report fails the run (halt_on_error / abort_on_error). Exits non-zero on a
# failure; prints how long the build and the run took.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:?usage: sanitize.sh thread|address}"
case "$kind" in
  thread) dir="${TSAN_BUILD_DIR:-$ROOT/build-tsan}" ;;
  address) dir="${ASAN_BUILD_DIR:-$ROOT/build-asan}" ;;
  *) echo "sanitize.sh: unknown sanitizer '$kind' (thread or address)" >&2; exit 64 ;;
esac

TARGETS=(k8sclient_tests k8sclient_integration_tests controller_tests runtime_tests
         history_sweep_tests webhook_tests
         webhook_e2e_tests certs_tests pod_annotations_e2e_tests pod_annotations_run_e2e_tests
         controller_e2e
         exit-reconciler exit-reconciler-operator)
# The ctest labels of those suites' tests (see test/*/CMakeLists.txt).
SUITES='^(k8sclient_tests|k8sclient_integration_tests|controller_tests|runtime_tests|history_sweep_tests|webhook_tests|webhook_e2e_tests|certs_tests|pod_annotations_e2e_tests|pod_annotations_run_e2e_tests|controller_e2e)$'

export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true
start=$SECONDS
cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" \
  -DEXITREC_SANITIZE="$kind" -DEXITREC_WERROR=ON -DEXITREC_BUILD_BENCH=OFF -DEXITREC_FUZZ=OFF \
  >/dev/null
cmake --build "$dir" -j "$(nproc)" --target "${TARGETS[@]}"
built=$SECONDS

# Reports go to stderr, which ctest shows for a failed test. exitcode=66 makes
# a report visible even where a test only checks a child's exit status.
# Suppression files (scripts/<tsan|lsan>.supp, when present) may name
# third-party code only, each entry with the reason.
opt_supp() { [ -f "$ROOT/scripts/$1.supp" ] && echo " suppressions=$ROOT/scripts/$1.supp" || true; }
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1$(opt_supp tsan)"
export ASAN_OPTIONS="halt_on_error=1 abort_on_error=1 detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1"
export LSAN_OPTIONS="$(opt_supp lsan)"
# ctest would list the tests of suites not built here as "Not Run": select
# the built ones by label. The e2e suites spawn the sanitized controller.
ctest --test-dir "$dir" -L "$SUITES" --output-on-failure -j "$(nproc)" --timeout 900
ran=$SECONDS
echo "sanitize $kind: build $((built - start)) s, tests $((ran - built)) s"
