#pragma once
// The outcome engine: a Workflow in, a Verdict out. Pure, no I/O, thread-safe
// for concurrent calls on distinct Workflows.
//
// The policy (docs/outcome-policy.md, README "Outcome policy") in short:
// - KFP runs: significant failures are failed/errored leaf work nodes (Pod,
//   Container, HTTP, Plugin, and Skipped-type nodes in Error) outside exit-task
//   subtrees, excluding attempts of a Retry that succeeded. A completed run
//   reported Succeeded while those failures exist is mis-reported. A
//   Failed/Error run is never turned into a success.
// - Plain Argo workflows: Argo's own verdict (assessDAGPhase, Steps rules,
//   Retry, workflow onExit override); never mis-reported, masked failures
//   listed.
// - A run that is not completed is never mis-reported; its truePhase is the
//   phase Argo's next reconcile would write as far as the snapshot decides it
//   (engine/argo_assess.h), else Running/Pending.
// Lists are sorted by node path (Failure::nodeName, ExitHandlerReport::name),
// so output is deterministic whatever the order of status.nodes.

#include <optional>
#include <string>
#include <vector>

#include "engine/workflow.h"

namespace exitrec {

enum class Generation : std::uint8_t {
  kKfpV1,         // "kfp-v1": not made by KFP's v2 Argo compiler (onExit or not)
  kKfpV2Sibling,  // "kfp-v2-sibling": 2.0–2.3, sibling exit task
  kKfpV2Hook,     // "kfp-v2-hook": ≥2.4, any hooks.exit (exit handlers, ignore-upstream)
  kKfpV2,         // "kfp-v2": v2, neither an exit handler nor a hook
  kArgo,          // "argo": no pipeline/runid label
};
std::string_view generationName(Generation g);

enum class ExitTaskFailurePolicy : std::uint8_t { kIgnore, kFail };

struct EvaluateOptions {
  ExitTaskFailurePolicy exitTaskFailure = ExitTaskFailurePolicy::kIgnore;
};

// Same keys and meaning as an element of Argo's {{workflow.failures}}.
struct Failure {
  std::string displayName;
  std::string message;
  std::string templateName;
  Phase phase = Phase::kFailed;
  std::string podName;
  std::string finishedAt;  // empty = null
  std::string nodeName;    // full node path (not part of the Argo keys)
};

struct ExitHandlerReport {
  std::string name;  // node path of the exit-handler group, e.g. "wf.root.exit-handler-1"
  Phase bodyPhase = Phase::kNone;
  std::string exitTask;  // node path of the exit task (empty if it never ran)
  Phase exitTaskPhase = Phase::kNone;
};

struct Verdict {
  std::string namespace_;
  std::string name;
  std::optional<std::string> runId;  // label pipeline/runid
  Generation generation = Generation::kArgo;
  Phase reportedPhase = Phase::kNone;
  Phase truePhase = Phase::kNone;
  bool completed = false;  // completed label or final phase
  bool evaluable = true;   // false e.g. when node status is offloaded
  std::string notEvaluableReason;
  bool misreported = false;
  std::optional<std::string> cause;  // e.g. "exit-task-masked-failure", "exit-task-failed",
                                     // "hooked-task-failed", "node-status-offloaded"
  // Significant failures: what decides truePhase. KFP: exit-task failures
  // only under ExitTaskFailurePolicy::kFail. Argo: every failed leaf (exit
  // handlers and hooks included), see maskedFailures.
  std::vector<Failure> failures;
  // Failures inside exit-task subtrees (onExit, exit-handler hooks, the
  // 2.0–2.3 sibling exit task and its driver; Argo: all hooks). Count towards
  // truePhase only under ExitTaskFailurePolicy::kFail (KFP).
  std::vector<Failure> exitTaskFailures;
  // Argo only: the failures that did not decide the verdict (absorbed by
  // depends/continueOn, or raised in a task hook / a losing onExit).
  std::vector<Failure> maskedFailures;
  // KFP exit-handler groups (kfp-v1, kfp-v2-sibling, kfp-v2-hook); empty for
  // argo and kfp-v2.
  std::vector<ExitHandlerReport> exitHandlers;
};

Verdict evaluate(const Workflow& workflow, const EvaluateOptions& options = {});

// Argo's pod name, format v2 (GeneratePodName): "<wf>-<template>-<fnv1a32(node
// name)>" with "<wf>-<template>" cut to kMaxPodNamePrefix chars; the workflow
// name itself for the entry node. (Format v1 is simply the node id.)
inline constexpr std::size_t kMaxPodNamePrefix = 242;
std::string argoPodName(std::string_view workflowName, std::string_view nodeName,
                        std::string_view templateName);

// One-line JSON with exactly the audit keys: namespace, name, runId,
// generation, reportedPhase, truePhase, misreported, cause, failures,
// exitHandlers.
std::string verdictToJson(const Verdict& verdict);
// JSON array of failures with Argo's workflow.failures keys (plain JSON).
std::string failuresToJson(const std::vector<Failure>& failures);

}  // namespace exitrec
