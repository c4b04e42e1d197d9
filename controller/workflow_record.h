#pragma once
// WorkflowRecord: the compact projection the controller's informer keeps per
// watched Workflow, instead of the object itself (a KFP Workflow can be ~1 MB).
//
// The projection is computed once per watch event from the raw JSON: the
// engine parses and evaluates the run right there (simdjson fast path), the
// correction state machine decides whether anything is left to do, and only
// that conclusion plus identity and a few labels are kept. Workers GET the
// full object again only for runs that need a step, so a cluster of healthy
// completed runs costs one parse per run, and memory per run is a few hundred
// bytes whatever its node count.
//
// Hostile objects: every field of a Workflow is tenant-writable (Argo's CRD
// has no status subresource), so projection never throws and never fails the
// informer. A run that cannot be read, evaluated or decided is kept as a
// rejected record (needsWork() false, `rejected` names the stage) so that it
// is skipped, logged and counted, and a later good version replaces it.
//
// Pure; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "controller/correction.h"
#include "engine/outcome.h"

namespace exitrec {

struct WorkflowRecord {
  std::string uid;
  std::string resourceVersion;
  Phase phase = Phase::kNone;
  Phase truePhase = Phase::kNone;
  Generation generation = Generation::kArgo;
  bool completed = false;  // isCompletedRun()
  bool kfpRun = false;     // has pipeline/runid
  bool evaluable = true;
  bool misreported = false;
  bool exitTaskFailed = false;  // some exit task failed (any policy)
  std::string cause;            // verdict cause, "" if none
  StepKind nextStep = StepKind::kNone;
  std::string why;  // NextStep::why of the decision
  // Exit-handler correctness view: {bodyPhase, exitTaskPhase} per handler.
  std::vector<std::pair<Phase, Phase>> exitHandlers;
  std::int64_t finishedAtUnix = 0;  // 0 when unknown
  // Why this run is skipped, as a bounded metric label (kReject* below), or
  // empty; rejectDetail says what was wrong (for the log line).
  std::string_view rejected;
  std::string rejectDetail;

  // True when a worker has something to do for this run: a step now, or the
  // re-verification of KFP's state that falls due later (the worker requeues
  // the key until then; without this the delayed requeue would be dropped).
  bool needsWork() const { return nextStep != StepKind::kNone || why == kAwaitingKfpReverify; }
  // A corrected run whose re-report by KFP's persistence agent is not seen yet.
  bool awaitingPersistenceAgent() const { return why == kAwaitingPersistenceAgent; }
};

// Values of WorkflowRecord::rejected (label `reason` of
// exit_reconciler_objects_rejected_total).
inline constexpr std::string_view kRejectParse = "parse";            // unreadable JSON or fields
inline constexpr std::string_view kRejectTooLarge = "too-large";     // over a size bound
inline constexpr std::string_view kRejectProjection = "projection";  // evaluation threw
inline constexpr std::string_view kRejectDecide = "decide";          // the state machine threw
// Worker side (controller.cpp): the reconcile threw, or a patch was refused.
inline constexpr std::string_view kRejectReconcile = "reconcile";
inline constexpr std::string_view kRejectPatch = "patch";

// Parses, evaluates and decides. Never throws: a run that cannot be parsed
// (kRejectParse), evaluated (kRejectProjection) or decided (kRejectDecide)
// comes back rejected with identity fields as far as they were read; a run
// whose node status is over the engine's bound (setMaxDecompressedNodeBytes)
// is not evaluable and rejected kRejectTooLarge.
WorkflowRecord projectWorkflow(std::string_view rawWorkflow, const CorrectionConfig& config,
                               Clock::WallTime now);

// A record for a run that could not be projected.
WorkflowRecord rejectedRecord(std::string_view reason, std::string detail);

// Builds the record from an already evaluated workflow.
WorkflowRecord makeRecord(const Workflow& wf, const Verdict& verdict, const NextStep& next);

}  // namespace exitrec
