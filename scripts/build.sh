#!/usr/bin/env bash
# Installs missing packages, then configures and builds into build/ (or $BUILD_DIR).
# Extra arguments are passed to cmake at configure time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"

"$ROOT/scripts/install-deps.sh"

# ccache: hash paths relative to the checkout so that clones in other folders
# (CI's fresh clone) reuse the same cache entries.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true

cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEXITREC_WERROR="${EXITREC_WERROR:-ON}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
