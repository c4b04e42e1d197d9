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

  // True when a worker has something to do for this run.
  bool needsWork() const { return nextStep != StepKind::kNone; }
  // A corrected run whose re-report by KFP's persistence agent is not seen yet.
  bool awaitingPersistenceAgent() const { return why == kAwaitingPersistenceAgent; }
};

// Parses, evaluates and decides. Errors: the engine's parse errors.
Result<WorkflowRecord> projectWorkflow(std::string_view rawWorkflow, const CorrectionConfig& config,
                                       Clock::WallTime now);

// Builds the record from an already evaluated workflow.
WorkflowRecord makeRecord(const Workflow& wf, const Verdict& verdict, const NextStep& next);

}  // namespace exitrec
