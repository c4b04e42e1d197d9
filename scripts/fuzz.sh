#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/CMakeLists.txt) with clang, ASan and
# UBSan in their own build directory and runs each for its share of
# ${FUZZ_SECONDS:-150} s in total: the engine 40 %, the correction decision,
# the k8sclient scanners and AdmissionReview decoding 20 % each. Seeds: the
# committed corpus fuzz/corpus/<target>/ and, for the engine, samples/,
# test/fixtures/data/ and, when present, ../shared/fixtures (never
# committed); the corpus a run grows stays in a temporary directory.
# FUZZ_TARGETS="a b" runs only those targets. Fails on any crash, leak, UB,
# timeout or broken invariant; the reproducer is kept in
# $FUZZ_BUILD_DIR/artifacts/<target>/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_BUILD_DIR="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-150}"
SHARED_DIR="${EXITREC_SHARED_DIR:-$ROOT/../shared}"
ALL_TARGETS="engine_fuzz correction_fuzz kube_scan_fuzz admission_fuzz"
TARGETS="${FUZZ_TARGETS:-$ALL_TARGETS}"

for tool in clang clang++; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz: $tool not found; scripts/install-deps.sh installs clang" >&2
    exit 1
  fi
done

SAN="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$FUZZ_BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXITREC_FUZZ=ON -DEXITREC_BUILD_TESTS=OFF \
  -DEXITREC_BUILD_BENCH=OFF -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" >/dev/null
# shellcheck disable=SC2086
cmake --build "$FUZZ_BUILD_DIR" --target $TARGETS -j "${FUZZ_JOBS:-2}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Seconds for one target: its share of FUZZ_SECONDS (at least 5).
share() {
  local pct=20
  [ "$1" = engine_fuzz ] && pct=40
  local s=$((FUZZ_SECONDS * pct / 100))
  [ "$s" -lt 5 ] && s=5
  echo "$s"
}

# Options per target: dictionary and input size.
opts() {
  case "$1" in
    engine_fuzz) echo "-dict=$ROOT/fuzz/workflow.dict -max_len=262144" ;;
    correction_fuzz) echo "-dict=$ROOT/fuzz/correction.dict -max_len=131072" ;;
    kube_scan_fuzz) echo "-dict=$ROOT/fuzz/kube_scan.dict -max_len=65536" ;;
    admission_fuzz) echo "-dict=$ROOT/fuzz/admission.dict -max_len=65536" ;;
  esac
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
failed=""
for target in $TARGETS; do
  mkdir -p "$WORK/$target/corpus" "$WORK/$target/seeds" "$FUZZ_BUILD_DIR/artifacts/$target"
  n=0
  add_seed() { n=$((n + 1)); cp "$1" "$WORK/$target/seeds/$n-$(basename "$1")"; }
  if [ -d "$ROOT/fuzz/corpus/$target" ]; then
    for f in "$ROOT/fuzz/corpus/$target"/*; do add_seed "$f"; done
  fi
  if [ "$target" = engine_fuzz ]; then
    for f in "$ROOT"/samples/*.json "$ROOT"/test/fixtures/data/*.yaml; do add_seed "$f"; done
    if [ -d "$SHARED_DIR/fixtures" ]; then
      while IFS= read -r -d '' f; do add_seed "$f"; done \
        < <(find "$SHARED_DIR/fixtures" -type f \( -name '*.yaml' -o -name '*.json' \) -size -512k -print0)
    fi
  fi
  seconds="$(share "$target")"
  echo "fuzz: $target: $n seed files, ${seconds}s"
  set +e
  # shellcheck disable=SC2046
  "$FUZZ_BUILD_DIR/fuzz/$target" "$WORK/$target/corpus" "$WORK/$target/seeds" $(opts "$target") \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -error_exitcode=77 -timeout_exitcode=78 \
    -artifact_prefix="$FUZZ_BUILD_DIR/artifacts/$target/" -print_final_stats=1 \
    >"$WORK/$target.log" 2>&1
  rc=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs|engine_fuzz: fast nodes scan)' "$WORK/$target.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$WORK/$target.log" >&2
    echo "fuzz: $target FAILED (exit $rc); reproducer in $FUZZ_BUILD_DIR/artifacts/$target/" >&2
    failed="$failed $target"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed" >&2
  exit 1
fi
echo "fuzz: clean ($TARGETS)"
