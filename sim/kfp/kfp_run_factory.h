#pragma once
// Synthetic KFP runs (Argo Workflow JSON with runtime status.nodes) for the
// e2e tests, the sandbox and the benchmarks.
//
// The shapes follow the KFP compilers and Argo's node naming: node IDs are
// "<wf>-<fnv1a32(node name)>", DAG task nodes are "<boundary>.<task>", a KFP
// container task X is X-driver (Pod) + X (DAG) + X.executor (Pod), and the
// exit handler appears per generation:
// - kV2Sibling (KFP 2.0–2.3): the exit task is a sibling of exit-handler-1 in
//   root whose driver `depends` accepts exit-handler-1.Failed; a failed body
//   with a succeeding exit task leaves the workflow Succeeded (mis-reported).
// - kV2Hook (KFP ≥2.4): hooks.exit on task exit-handler-1; body failure fails
//   the run, an exit-task failure is ignored by Argo.
// - kV1 (KFP v1 SDK): spec.onExit; the workflow-level onExit node.
// - kArgo: a plain Argo DAG, no pipeline/runid label.
//
// Pure and thread-safe.

#include <cstdint>
#include <string>

namespace exitrec {

enum class RunShape : std::uint8_t { kV2Sibling, kV2Hook, kV1, kArgo };

struct KfpRunSpec {
  RunShape shape = RunShape::kV2Sibling;
  std::string name = "run";
  std::string ns = "kubeflow";
  std::string uid;             // default: derived from the name
  std::string runId;           // default: derived from the name (ignored for kArgo)
  int bodyTasks = 2;           // container tasks in the exit handler body (3 nodes each)
  bool bodyFails = false;      // the first body task fails (exit code 1)
  bool exitTaskFails = false;  // the exit task fails
  bool completed = true;       // false: Running, exit task not started yet
  std::string startedAt = "2026-11-28T10:00:00Z";
  std::string finishedAt = "2026-11-28T10:05:00Z";
};

// The Workflow JSON (no metadata.resourceVersion: the API server assigns it).
std::string makeKfpRunJson(const KfpRunSpec& spec);

// The status.phase Argo gives such a run.
std::string argoPhaseFor(const KfpRunSpec& spec);

}  // namespace exitrec
