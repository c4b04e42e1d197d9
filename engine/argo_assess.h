#pragma once
// Argo's own phase rules replayed over a status.nodes snapshot: assessDAGPhase
// (with Retry children, continueOn, failFast, dag.target), the Steps and
// StepGroup rules, Retry exhaustion, the orphaned-TaskGroup heal, and the
// entry node → workflow phase mapping with the workflow-level onExit override.
//
// A fulfilled node keeps its phase (Argo never changes one). A node that is
// not fulfilled gets the phase Argo's next reconcile would give it when the
// snapshot decides it; otherwise it stays as it is (Running/Pending). So on a
// completed workflow this reproduces status.phase, and on a mid-run snapshot
// it predicts the verdict Argo is about to write (e.g. an exhausted Retry that
// is still marked Running).
//
// Not thread-safe (memoises); cheap to construct; linear in the nodes it has
// to assess (only unfulfilled DAG/Steps/Retry/TaskGroup nodes are assessed).

#include <cstdint>
#include <vector>

#include "engine/workflow.h"

namespace exitrec {

// Whether `name` is "<base>(<n>)": a retry attempt of node `base`
// (operator.go executeTemplate names attempts "%s(%d)").
bool isAttemptName(std::string_view name, std::string_view base);

class ArgoAssessor {
 public:
  explicit ArgoAssessor(const Workflow& workflow);

  // The node's phase after Argo's next reconcile (see above).
  Phase nodePhase(const Node& node);
  bool nodeFulfilled(const Node& node);

  // The entry node mapped to a workflow phase (A10), with the workflow-level
  // onExit override. kRunning/kPending while undecided; kNone when there is
  // no entry node.
  Phase workflowPhase();
  // Phase of the entry node alone, mapped as above but without onExit.
  Phase mainPhase();

  // Whether the node was started by a hook or onExit (nodeFlag.hooked, or
  // its name where the flag is older than the data).
  static bool isHookNode(const Node& node);
  // Whether `child` (a child of Retry node `retry`) is one of its attempts:
  // named "<retry>(<n>)" (operator.go executeTemplate), or else any child that
  // is not a hook. A retried hook's attempts "….onExit(<n>)" are hooked and
  // still attempts of the hook's Retry node (KFP 2.17's templateDefaults).
  static bool isRetryAttempt(const Node& retry, const Node& child);

 private:
  std::uint32_t indexOf(const Node& node) const;
  Phase assess(std::uint32_t index, int depth);
  Phase assessDag(const Node& node, int depth);
  Phase assessSteps(const Node& node, int depth);
  Phase assessStepGroup(const Node& node, int depth);
  Phase assessRetry(const Node& node, int depth);
  Phase assessTaskGroup(const Node& node, int depth);
  Phase phaseOf(const Node& node, int depth);
  bool fulfilledOf(const Node& node, int depth);

  const Workflow& wf_;
  enum class State : std::uint8_t { kNew, kBusy, kDone };
  std::vector<State> state_;
  std::vector<Phase> memo_;
};

}  // namespace exitrec
