#!/bin/bash
# Output check for the run-history benchmark's optimizations: audits a fixed
# seeded history (history_bench_server --seed S) and compares the NDJSON lines
# byte for byte with a reference.
#
#   bench/history/check_audit_output.sh RUNS SEED REF
#
# REF is either a file of NDJSON lines (the audit output of the build before
# the change) or a directory with an exit-reconciler and a
# history_bench_server of that build, which are then run on the same seed.
# Also checks that the Python baseline counts the same runs and mis-reported
# runs as the audit. Exits 0 when identical, 1 with a diff otherwise.
# Needs build/bench/history_bench_server and build/controller/exit-reconciler.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=${1:?RUNS}
seed=${2:?SEED}
ref=${3:?REF}
work=$(mktemp -d)
servers=()
cleanup() {
  for s in "${servers[@]}"; do kill "$s" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# audit SERVER_BIN AUDIT_BIN OUT: serves the seeded history, audits it into OUT.
audit() {
  local fifo="$work/stdin.$RANDOM" url="$work/url.$RANDOM"
  mkfifo "$fifo"
  "$1" --runs "$runs" --seed "$seed" < "$fifo" > "$url" &
  servers+=($!)
  sleep 86400 > "$fifo" &
  servers+=($!)
  for _ in $(seq 100); do [ -s "$url" ] && break; sleep 0.2; done
  local status=0
  "$2" audit --kfp-api-url "$(head -1 "$url")" > "$3" 2> "$work/err" || status=$?
  if [ "$status" -gt 1 ]; then
    echo "audit exited $status: $(tail -3 "$work/err")" >&2
    exit 1
  fi
  if [ -n "${4:-}" ]; then
    /usr/bin/python3 "$here/baseline_history_audit.py" "$(head -1 "$url")" > "$4"
  fi
}

audit "$build/bench/history_bench_server" "$build/controller/exit-reconciler" "$work/new" "$work/py"
if [ -d "$ref" ]; then
  audit "$ref/history_bench_server" "$ref/exit-reconciler" "$work/old"
else
  cp "$ref" "$work/old"
fi
if ! cmp -s "$work/old" "$work/new"; then
  echo "audit output differs from the reference:" >&2
  diff <(head -c 20000 "$work/old") <(head -c 20000 "$work/new") | head -20 >&2
  exit 1
fi
lines=$(wc -l < "$work/new")
mis=$(grep -c '"misreported":true' "$work/new" || true)
py_runs=$(grep -o '"runs": [0-9]*' "$work/py" | awk '{print $2}')
py_mis=$(grep -o '"misreported": [0-9]*' "$work/py" | awk '{print $2}')
if [ "$lines" != "$runs" ] || [ "$py_runs" != "$runs" ] || [ "$py_mis" != "$mis" ]; then
  echo "counts disagree: audit $lines lines, $mis mis-reported; python $py_runs runs, $py_mis" >&2
  exit 1
fi
echo "identical: $lines lines, $mis mis-reported (python agrees), sha256 $(sha256sum < "$work/new" | cut -c1-16)"
