#!/usr/bin/env bash
# Regenerates the bundled sample runs from our own specs in test/fixtures/data/
# with the test-side Argo simulator (test/fixtures/runtime_builder.*). The output
# is deterministic; samples/README.md says what each file shows.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
cmake --build "$BUILD_DIR" --target synth_workflow >/dev/null
SYNTH="$BUILD_DIR/test/fixtures/synth_workflow"
D="$ROOT/test/fixtures/data"
S="$ROOT/samples"
NS=(--namespace team-vision)

"$SYNTH" "$D/kfp-v1-nightly-etl.yaml" "${NS[@]}" --name nightly-etl-x7k2q \
  --run-id 0b6f0c1e-2a31-4a55-9c1e-5e2b8e1d7a01 --fail exit-handler-1.load \
  >"$S/kfp-v1-onexit-body-failed.json"
"$SYNTH" "$D/kfp-v2.3-sibling-exit-handler.yaml" "${NS[@]}" --name pipeline-with-exit-handler-m4z8c \
  --run-id 4d2a9b7e-0c5f-4f1b-8e3a-6a7d2c9e1b02 --fail exit-handler-1.fail-op \
  >"$S/kfp-v2.3-sibling-masked-failure.json"
"$SYNTH" "$D/kfp-v2.3-sibling-exit-handler.yaml" "${NS[@]}" --name pipeline-with-exit-handler-q9w3e \
  --run-id 7c1e5a3d-9b2f-4e6a-a1c8-3f5d7b9e2c03 \
  >"$S/kfp-v2.3-sibling-healthy.json"
"$SYNTH" "$D/kfp-v2.3-sibling-exit-handler.yaml" "${NS[@]}" --name pipeline-with-exit-handler-big7r \
  --run-id 9e3b7d1f-4a6c-4b8e-b2d5-8c1a3e5f7d04 --fail exit-handler-1.fail-op --compress gzip \
  >"$S/kfp-v2.3-sibling-masked-failure-compressed.json"
"$SYNTH" "$D/kfp-v2.4-train-with-cleanup.yaml" "${NS[@]}" --name train-with-cleanup-h2k5n \
  --run-id 2f8d4b6a-1e3c-4d7f-9a5b-0c2e4f6a8b05 --fail exit-handler-1.train \
  >"$S/kfp-v2.4-hook-body-failed.json"
"$SYNTH" "$D/kfp-v2.4-train-with-cleanup.yaml" "${NS[@]}" --name train-with-cleanup-p6t1v \
  --run-id 5a1c3e5d-7f9b-4c2e-8d4a-6b8f0a2c4e06 --fail exit-handler-1.onExit.cleanup \
  >"$S/kfp-v2.4-hook-exit-task-failed.json"
"$SYNTH" "$D/kfp-v2.4-nested-exit-handlers.yaml" "${NS[@]}" --name nested-exit-handlers-r3d8s \
  --run-id 8b4e6c2a-3d5f-4a7b-9c1e-2d4f6a8c0e07 \
  >"$S/kfp-v2.4-nested-healthy.json"
"$SYNTH" "$D/kfp-v2.4-train-with-cleanup.yaml" "${NS[@]}" --name train-with-cleanup-w8j4m \
  --run-id 1d3f5b7c-9e2a-4c4e-b6d8-0f2a4c6e8a08 --fail exit-handler-1.preprocess --running exit-handler-1.onExit.cleanup \
  >"$S/kfp-v2.4-running.json"
"$SYNTH" "$D/kfp-v2.4-ignore-upstream-failure.yaml" "${NS[@]}" --name ignore-upstream-failure-c5v9b \
  --run-id 6e2a4c8d-0b1f-4d3a-a5c7-9e1b3d5f7a09 --fail evaluate.onExit.publish-report \
  >"$S/kfp-v2.4-ignore-upstream-hooked-task-failed.json"
"$SYNTH" "$D/kfp-v2-parallelfor-retry.yaml" "${NS[@]}" --name sharded-training-f1g7h \
  --run-id 3c5e7a9b-2d4f-4e6a-8b0c-1d3f5a7c9e10 --loop for-loop-1.iteration-iterations=3 \
  --attempts 'iteration-iterations(1:1).iteration-item.fetch-shard=2' \
  >"$S/kfp-v2-parallelfor-retry-succeeded.json"
"$SYNTH" "$D/argo-report-builder.yaml" --namespace argo --name report-builder-k2l9p --no-run-id \
  --fail validate \
  >"$S/argo-depends-handled-failure.json"
# KFP 2.17's default install: every template retry-wrapped (Argo v4 templateDefaults).
"$SYNTH" "$D/kfp-v2.4-ignore-upstream-failure.yaml" "${NS[@]}" --name ignore-upstream-failure-z4k8d \
  --run-id 4b7d9f1a-3c5e-4a6b-8d0f-2a4c6e8b0d11 --kfp-2.17-retry --fail evaluate.onExit.publish-report \
  >"$S/kfp-2.17-ignore-upstream-hooked-task-failed.json"
"$SYNTH" "$D/kfp-v2.4-train-with-cleanup.yaml" "${NS[@]}" --name train-with-cleanup-e5r2t \
  --run-id 6d9f1b3c-5e7a-4c8d-9f2b-4c6e8a0d2f12 --kfp-2.17-retry --fail exit-handler-1.onExit.cleanup \
  >"$S/kfp-2.17-hook-exit-task-failed.json"
"$SYNTH" "$D/kfp-v2.4-train-with-cleanup.yaml" "${NS[@]}" --name train-with-cleanup-n7b3y \
  --run-id 8f1b3d5e-7a9c-4e0f-a1d4-6e8a0c2f4b13 --kfp-2.17-retry --error-attempts exit-handler-1.train=1 \
  >"$S/kfp-2.17-evicted-pod-retried.json"
echo "samples regenerated in $S"
