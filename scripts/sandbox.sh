#!/usr/bin/env bash
# The local sandbox: builds (installing missing Debian packages), then runs
# the development binary exit-reconciler-sandbox (sandbox/; not in the image):
# the controller, in-process, against simulated Kubernetes and
# KFP APIs (the KFP simulator imitates the KFP version of --kfp-version, and
# KFP's persistence agent is emulated) seeded with sample runs of every KFP
# generation. Prints a before/after table, with any Workflow KFP deleted; then
# audits and backfills KFP's seeded run history (past runs whose Workflow is
# gone: docs/history.md) and prints a second table. Keeps /metrics up until
# Ctrl-C.
#   scripts/sandbox.sh                      # interactive
#   scripts/sandbox.sh --kfp-version 2.17   # 2.0-2.3 | 2.4-2.16 (default) | 2.17 | master
#   scripts/sandbox.sh --exit-after-report  # CI: exit 0 when every mis-reported run was
#                                           # corrected, FAILED in KFP, and nothing deleted,
#                                           # and backfill corrected every gone mis-reported
#                                           # history run and changed no other
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export BUILD_DIR
"$ROOT/scripts/build.sh" >/dev/null
exec "$BUILD_DIR/sandbox/exit-reconciler-sandbox" --samples "$ROOT/samples" "$@"
