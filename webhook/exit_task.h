#pragma once
// Exit-task identification and the state an exit task is given.
//
// Pure: no I/O, no logging. Safe to call concurrently on distinct inputs.
//
// Which pods are exit-task pods (see docs/exit-task-status.md, "Scope"):
// - the pod carries label `pipeline/runid` (a KFP run) and the Argo
//   annotation `workflows.argoproj.io/node-name`, and
// - either it is labelled `workflows.argoproj.io/on-exit=true` and its node
//   path contains an `onExit` hook segment (KFP >= 2.4 exit hooks, KFP v1
//   `spec.onExit`; `onExit(n)` when the hook template is retried, as under
//   KFP 2.17's templateDefaults), or its node path resolves, through the owning Workflow's
//   spec, to a sibling task whose driver `depends` accepts `<X>.Failed` or
//   `<X>.Errored` (KFP 2.0-2.3 exit tasks).
// Pods of KFP system templates (drivers, importers) are exit-task pods without
// user code: nothing is injected into them.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/outcome.h"
#include "engine/workflow.h"

namespace exitrec {

// Label/annotation names read from pods.
inline constexpr std::string_view kLabelRunId = "pipeline/runid";
inline constexpr std::string_view kLabelWorkflow = "workflows.argoproj.io/workflow";
inline constexpr std::string_view kLabelOnExit = "workflows.argoproj.io/on-exit";
inline constexpr std::string_view kAnnotationNodeName = "workflows.argoproj.io/node-name";
inline constexpr std::string_view kAnnotationRuntimeRole = "pipelines.kubeflow.org/runtime-role";

// What the webhook needs to know about a pod before it reads any Workflow.
struct PodIdentity {
  std::string namespace_;
  std::string name;
  std::string runId;         // label pipeline/runid ("" = not a KFP pod)
  std::string workflowName;  // label workflows.argoproj.io/workflow
  std::string nodeName;      // annotation workflows.argoproj.io/node-name
  bool onExitLabel = false;  // label workflows.argoproj.io/on-exit == "true"
  std::string runtimeRole;   // annotation pipelines.kubeflow.org/runtime-role (KFP >= 2.17)
};

// Cheap pre-check, no Workflow needed: false means certainly out of scope.
// True for every pod of a KFP run that has a node name and a workflow label
// (2.0-2.3 sibling exit tasks can be recognised only with the spec).
bool mayBeExitTaskPod(const PodIdentity& pod);

enum class ExitTaskKind : std::uint8_t {
  kExitHandlerHook,     // >= 2.4: hooks.exit on task exit-handler-N (template comp-exit-handler-N)
  kIgnoreUpstreamHook,  // >= 2.4: hooks.exit on an ordinary task (.ignore_upstream_failure())
  kWorkflowOnExit,      // KFP v1: spec.onExit
  kSibling,             // 2.0-2.3: sibling task whose driver depends on <X>.Failed
};
std::string_view exitTaskKindName(ExitTaskKind kind);

// An exit-task pod located in its Workflow.
struct ExitTaskTarget {
  ExitTaskKind kind = ExitTaskKind::kExitHandlerHook;
  std::string
      bodyNodeName;  // node whose outcome the exit task reports, e.g. "W.root.exit-handler-1"
  std::string bodyTaskName;  // its task name, e.g. "exit-handler-1" (pipelineTaskName)
  std::string
      exitTaskNodeName;     // root of the exit task's subtree, e.g. "W.root.exit-handler-1.onExit"
  std::string podTemplate;  // the pod node's template ("" if it could not be resolved)
  bool userCode = true;     // false for driver/importer pods
  // Parameters of the exit task whose spec value contains the literal
  // "{{workflow.status}}" (constant input values), with that spec value.
  std::vector<std::pair<std::string, std::string>> statusPlaceholders;
};

// Locates the pod in the Workflow's spec. nullopt = not an exit-task pod.
std::optional<ExitTaskTarget> identifyExitTask(const Workflow& wf, const PodIdentity& pod);

// One node path split into segments: "W.root.a(0:x.y).executor" ->
// ["root", "a(0:x.y)", "executor"] (relative to the workflow name; dots inside
// parentheses or brackets do not split). Under a retried entry template (KFP
// 2.17's templateDefaults) the first segment is the entry's attempt:
// "W(0).root(0).a" -> ["(0)", "root(0)", "a"]. Exposed for tests.
std::vector<std::string> splitNodePath(std::string_view workflowName, std::string_view nodeName);

// What a completed pod says about its node (from the run's pods).
struct PodObservation {
  std::string podName;
  std::string nodeName;        // annotation workflows.argoproj.io/node-name
  std::string nodeId;          // annotation workflows.argoproj.io/node-id (may be empty)
  Phase phase = Phase::kNone;  // Succeeded / Failed / Error (Pod phases mapped to node phases)
  std::string message;         // e.g. "Error (exit code 1)"
  std::string finishedAt;
};

// True when the stored Workflow does not yet show the body as final: the body
// node is missing or unfulfilled, or a Pod node under it is unfulfilled. The
// pods must then be consulted (Argo saves the Workflow after creating pods).
bool bodyNeedsPods(const Workflow& wf, const ExitTaskTarget& target);

// Overlays completed pods onto the stored Workflow's nodes: an unfulfilled
// (or missing) node whose pod has finished takes the pod's phase. Returns the
// number of nodes changed or added. Rebuilds the index.
std::size_t overlayPods(Workflow& wf, const std::vector<PodObservation>& pods);

// The values given to an exit task.
struct ExitTaskState {
  Phase exitHandlerStatus = Phase::kSucceeded;  // Succeeded | Failed | Error
  Phase workflowStatus = Phase::kSucceeded;     // Succeeded | Failed | Error, never Running
  std::vector<Failure> failures;                // significant failures (engine)
  std::string finalState;                       // SUCCEEDED | FAILED | CANCELLED
  std::string pipelineTaskName;
  std::string pipelineJobResourceName;  // the Argo workflow name
  int errorCode = 0;                    // google.rpc.Code; 0 = no error
  std::string errorMessage;
  bool usedPods = false;  // pod phases were consulted

  std::string failuresJson() const;     // plain JSON array, "[]" when none
  std::string finalStatusJson() const;  // PipelineTaskFinalStatus, camelCase keys
};

// google.rpc.Code values used in PipelineTaskFinalStatus.error.code.
inline constexpr int kRpcCancelled = 1;  // the run was stopped or terminated
inline constexpr int kRpcUnknown = 2;    // a task failed (non-zero exit, ...)
inline constexpr int kRpcInternal = 13;  // a task errored (Argo Error phase)

// Computes the state from a Workflow (already overlaid with pods where
// needed). The exit task's own subtree never counts.
ExitTaskState computeExitTaskState(const Workflow& wf, const ExitTaskTarget& target);

// "fail-op" for "W.root.exit-handler-1.fail-op.executor": the KFP task a node
// belongs to (drops the executor/driver plumbing). Exposed for tests.
std::string kfpTaskOfNode(std::string_view workflowName, std::string_view nodeName);

}  // namespace exitrec
