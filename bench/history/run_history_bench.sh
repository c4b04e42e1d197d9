#!/bin/bash
# Run-history benchmark: `exit-reconciler audit --kfp-api-url` against the
# Python baseline (baseline_history_audit.py), both reading the same seeded
# history from history_bench_server. Alternates the two ROUNDS times and
# prints each round and the medians (runs/s, MB/s of manifests, peak RSS).
#
#   bench/history/run_history_bench.sh [RUNS=100000] [ROUNDS=3]
# Needs build/bench/history_bench_server and build/controller/exit-reconciler.
# AUDIT_ARGS: extra audit flags, e.g. AUDIT_ARGS="--concurrency 1".
# Each round prints the load average; results are in docs/benchmarks.md (Run
# history). check_audit_output.sh checks an optimization left the output be.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=${1:-100000}
rounds=${2:-3}
work=$(mktemp -d)
trap 'exec 3>&-; kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/stdin"
"$build/bench/history_bench_server" --runs "$runs" < "$work/stdin" > "$work/url" &
server=$!
exec 3> "$work/stdin"
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.2; done
url=$(head -1 "$work/url")
echo "server $url, $runs runs"
load() { cut -d' ' -f1-3 /proc/loadavg; }
for r in $(seq "$rounds"); do
  echo "round $r: load average $(load) at $(date -u +%H:%M:%S)"
  # shellcheck disable=SC2086 # AUDIT_ARGS: words on purpose
  /usr/bin/time -f '%e %M' -o "$work/t" "$build/controller/exit-reconciler" audit \
    --kfp-api-url "$url" ${AUDIT_ARGS:-} > /dev/null 2> "$work/err" || [ $? -eq 1 ]
  read -r secs rss < <(tail -1 "$work/t")
  mbs=$(tail -1 "$work/err" | grep -o '[0-9.]* MB/s' | cut -d' ' -f1)
  echo "cpp    round $r: $(awk -v n="$runs" -v s="$secs" 'BEGIN{printf "%.1f runs/s", n/s}') ${secs}s rss ${rss}KB ${mbs} MB/s" | tee -a "$work/cpp"
  /usr/bin/time -f '%e %M' -o "$work/t" /usr/bin/python3 "$here/baseline_history_audit.py" "$url" > "$work/py.json"
  read -r secs rss < <(tail -1 "$work/t")
  echo "python round $r: $(awk -v n="$runs" -v s="$secs" 'BEGIN{printf "%.1f runs/s", n/s}') ${secs}s rss ${rss}KB $(cat "$work/py.json")" | tee -a "$work/py"
done
echo "end: load average $(load) at $(date -u +%H:%M:%S)"
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
c=$(awk '{print $4}' "$work/cpp" | median); p=$(awk '{print $4}' "$work/py" | median)
crss=$(awk '{print $8}' "$work/cpp" | tr -d KB | median); prss=$(awk '{print $8}' "$work/py" | tr -d KB | median)
cmb=$(awk '{print $9}' "$work/cpp" | median)
pmb=$(grep -o '"mbPerSecond": [0-9.]*' "$work/py" | awk '{print $2}' | median)
echo "median: cpp $c runs/s ${cmb} MB/s (rss ${crss}KB), python $p runs/s ${pmb} MB/s (rss ${prss}KB), ratio $(awk -v a="$c" -v b="$p" 'BEGIN{printf "%.1f", a/b}')x"
