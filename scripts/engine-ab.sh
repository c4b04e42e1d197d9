#!/usr/bin/env bash
# Compares this working tree's engine with the engine at BASE_REF, side by
# side in one process (bench/engine_ab.cpp):
#
#   scripts/engine-ab.sh BASE_REF [engine_ab options: --order --sizes --seconds]
#
# e.g. `scripts/engine-ab.sh HEAD --order api` measures an uncommitted change,
# and `scripts/engine-ab.sh HEAD` on a clean tree shows the noise floor (A and
# B identical). BASE_REF's engine/ and common/ are unpacked with `git archive`
# into build-ab/base-src (a fixed place, so ccache hits when the base has not
# changed), and its engine is built in build-ab/ next to this tree's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: scripts/engine-ab.sh BASE_REF [--order api|argo|tree] [--sizes N,N] [--seconds S]" >&2
  exit 2
fi
BASE_REF="$1"
shift
if ! git -C "$ROOT" rev-parse --verify --quiet "$BASE_REF^{commit}" >/dev/null; then
  echo "engine-ab: '$BASE_REF' is not a commit in $ROOT" >&2
  exit 2
fi
BUILD_DIR="${BUILD_DIR:-$ROOT/build-ab}"
BASE_DIR="$BUILD_DIR/base-src"
rm -rf "$BASE_DIR"
mkdir -p "$BASE_DIR"
git -C "$ROOT" archive "$BASE_REF" engine common | tar -x -C "$BASE_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEXITREC_BUILD_TESTS=OFF -DEXITREC_AB_BASE="$BASE_DIR" >/dev/null
cmake --build "$BUILD_DIR" --target engine_ab >/dev/null

PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
  PIN=(taskset -c 1)
fi
echo "engine-ab: A = working tree, B = $BASE_REF ($(git -C "$ROOT" rev-parse --short "$BASE_REF"))"
"${PIN[@]}" "$BUILD_DIR/bench/engine_ab" "$@"
