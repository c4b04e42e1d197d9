#!/usr/bin/env bash
# Builds the engine's libFuzzer target with clang, ASan and UBSan in its own
# build directory and runs it for ${FUZZ_SECONDS:-60} s on a seed corpus made
# at run time from samples/, test/fixtures/data/ and, when present,
# ../shared/fixtures (never committed). Fails on any crash, leak, UB, timeout
# or broken invariant; the reproducer is kept in $FUZZ_BUILD_DIR/artifacts/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_BUILD_DIR="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
SHARED_DIR="${EXITREC_SHARED_DIR:-$ROOT/../shared}"

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
cmake --build "$FUZZ_BUILD_DIR" --target engine_fuzz -j "${FUZZ_JOBS:-2}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/corpus" "$WORK/seeds" "$FUZZ_BUILD_DIR/artifacts"
n=0
add_seed() { n=$((n + 1)); cp "$1" "$WORK/seeds/$n-$(basename "$1")"; }
for f in "$ROOT"/samples/*.json "$ROOT"/test/fixtures/data/*.yaml; do add_seed "$f"; done
if [ -d "$SHARED_DIR/fixtures" ]; then
  while IFS= read -r -d '' f; do add_seed "$f"; done \
    < <(find "$SHARED_DIR/fixtures" -type f \( -name '*.yaml' -o -name '*.json' \) -size -512k -print0)
fi
echo "fuzz: $n seed files, ${FUZZ_SECONDS}s"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
set +e
"$FUZZ_BUILD_DIR/fuzz/engine_fuzz" "$WORK/corpus" "$WORK/seeds" \
  -dict="$ROOT/fuzz/workflow.dict" \
  -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
  -error_exitcode=77 -timeout_exitcode=78 \
  -artifact_prefix="$FUZZ_BUILD_DIR/artifacts/" -print_final_stats=1
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "fuzz: FAILED (exit $rc); reproducer in $FUZZ_BUILD_DIR/artifacts/" >&2
  exit "$rc"
fi
echo "fuzz: clean"
