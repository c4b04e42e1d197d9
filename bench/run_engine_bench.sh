#!/usr/bin/env bash
# Runs the engine benchmark (in-process medians for 100..50k nodes), then times
# the whole `exit-reconciler audit` process on a 50k-node (~25 MB) workflow
# against Python's bare json.load of the same file, with hyperfine.
# Writes nothing into the repo except under $BUILD_DIR. Keep it short: the
# machine is shared.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
RUNS="${BENCH_RUNS:-10}"

cmake --build "$BUILD_DIR" --target engine_bench exit-reconciler >/dev/null
BENCH="$BUILD_DIR/bench/engine_bench"
AUDIT="$BUILD_DIR/controller/exit-reconciler"

echo "== in-process: $BENCH"
"$BENCH" ${BENCH_ARGS:-}

FILE="$BUILD_DIR/bench/kfp-50k-nodes.json"
"$BENCH" --write "$FILE" --nodes 50000
echo
echo "== whole process, same file ($(du -h "$FILE" | cut -f1))"
# audit exits 1 (the synthetic run is mis-reported), hence -i.
hyperfine -N -i --warmup 2 --runs "$RUNS" --export-json "$BUILD_DIR/bench/hyperfine.json" \
  -n audit "$AUDIT audit $FILE" \
  -n python-json.load "/usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' $FILE"
/usr/bin/python3 - "$BUILD_DIR/bench/hyperfine.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
a, p = r["audit"]["median"], r["python-json.load"]["median"]
print(f"median audit {a*1e3:.1f} ms, python json.load {p*1e3:.1f} ms, ratio {p/a:.1f}x "
      f"(target >= 10x: {'met' if p/a >= 10 else 'MISSED'})")
PY
