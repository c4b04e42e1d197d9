#include "controller/workflow_record.h"

#include <optional>

#include "common/rfc3339.h"
#include "controller/annotations.h"

namespace exitrec {
namespace {

std::int64_t unixSeconds(const std::string& rfc3339) {
  return parseRfc3339Seconds(rfc3339).value_or(0);  // 0: unknown
}

}  // namespace

WorkflowRecord makeRecord(const Workflow& wf, const Verdict& verdict, const NextStep& next) {
  WorkflowRecord r;
  r.uid = wf.uid;
  r.resourceVersion = wf.resourceVersion;
  r.phase = wf.phase;
  r.truePhase = verdict.truePhase;
  r.generation = verdict.generation;
  r.completed = isCompletedRun(wf);
  r.kfpRun = wf.labels.count(std::string(lbl::kRunId)) != 0;
  r.evaluable = verdict.evaluable;
  r.misreported = verdict.misreported;
  r.exitTaskFailed = !verdict.exitTaskFailures.empty();
  r.cause = verdict.cause.value_or("");
  r.nextStep = next.kind;
  r.why = next.kind == StepKind::kNone ? next.why : std::string(stepKindName(next.kind));
  r.exitHandlers.reserve(verdict.exitHandlers.size());
  for (const ExitHandlerReport& h : verdict.exitHandlers) {
    r.exitHandlers.emplace_back(h.bodyPhase, h.exitTaskPhase);
  }
  r.finishedAtUnix = unixSeconds(wf.finishedAt);
  return r;
}

WorkflowRecord rejectedRecord(std::string_view reason, std::string detail) {
  WorkflowRecord r;
  r.rejected = reason;
  r.rejectDetail = std::move(detail);
  r.evaluable = false;
  return r;
}

namespace {

// Runs one stage; a throw becomes a rejected record naming the stage.
template <typename Fn>
std::optional<WorkflowRecord> guarded(std::string_view stage, Fn&& fn) {
  try {
    fn();
    return std::nullopt;
  } catch (const std::exception& e) {
    return rejectedRecord(stage, std::string(stage) + " threw: " + e.what());
  } catch (...) {
    return rejectedRecord(stage, std::string(stage) + " threw a non-standard exception");
  }
}

}  // namespace

WorkflowRecord projectWorkflow(std::string_view rawWorkflow, const CorrectionConfig& config,
                               Clock::WallTime now) {
  std::optional<Result<Workflow>> wf;
  if (auto r = guarded(kRejectParse, [&] { wf.emplace(parseWorkflowJson(rawWorkflow)); }))
    return std::move(*r);
  if (!*wf)
    return rejectedRecord(kRejectParse, wf->error().message);
  const Workflow& w = wf->value();
  std::optional<Verdict> verdict;
  if (auto r = guarded(kRejectProjection, [&] {
        verdict.emplace(evaluate(w, EvaluateOptions{config.exitTaskFailure}));
      }))
    return std::move(*r);
  std::optional<NextStep> next;
  if (auto r =
          guarded(kRejectDecide, [&] { next.emplace(decideNextStep(w, *verdict, config, now)); }))
    return std::move(*r);
  std::optional<WorkflowRecord> rec;
  if (auto r = guarded(kRejectProjection, [&] { rec.emplace(makeRecord(w, *verdict, *next)); }))
    return std::move(*r);
  if (!w.nodeStatusOverLimit.empty()) {
    // Evaluated as not evaluable (no nodes were read); skipped and counted.
    rec->rejected = kRejectTooLarge;
    rec->rejectDetail = verdict->notEvaluableReason;
  }
  return std::move(*rec);
}

}  // namespace exitrec
