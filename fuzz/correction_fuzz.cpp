// libFuzzer target: the correction decision over arbitrary annotations and
// status of a Workflow. The input is Workflow JSON (the seeds are KFP runs
// carrying the controller's own exit-reconciler.io/* annotations; the
// dictionary fuzz/correction.dict steers the mutations to them). Every
// readable workflow is decided under each configuration; projectWorkflow()
// (the informer's projection) runs on the raw text. Besides crashes, leaks
// and UB, it aborts when:
// - decideNextStep() or evaluate() throws (a throw in the informer used to
//   stop the whole controller: issue 16);
// - a run that is not completed, or not a KFP run, gets a step;
// - a patch is not one JSON object, or a record patch writes the completed
//   label;
// - projectWorkflow() disagrees with evaluate() + decideNextStep(), or
//   rejects a workflow the engine reads.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "controller/annotations.h"
#include "controller/correction.h"
#include "controller/workflow_record.h"
#include "engine/outcome.h"
#include "engine/workflow.h"

namespace {

using namespace exitrec;

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "invariant broken: %s\n%s\n", what, detail.c_str());
  std::abort();
}

void checkStep(const Workflow& wf, const NextStep& step) {
  if (step.kind == StepKind::kNone)
    return;
  if (!isCompletedRun(wf))
    broken("a run that is not completed gets a step", step.why);
  if (wf.labels.count(std::string(lbl::kRunId)) == 0)
    broken("a plain Argo workflow gets a step", step.why);
  if (step.kind == StepKind::kRecord || step.kind == StepKind::kEmitEvent) {
    auto patch = nlohmann::json::parse(step.patch, nullptr, /*allow_exceptions=*/false);
    if (!patch.is_object())
      broken("a patch is one JSON object", step.patch);
    const auto labels = patch.find("metadata");
    if (labels != patch.end() && labels->is_object()) {
      auto l = labels->find("labels");
      if (l != labels->end() && l->is_object() && l->contains(std::string(lbl::kCompleted)))
        broken("the completed label is never written", step.patch);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Clock::WallTime now{std::chrono::seconds(1'800'000'000)};
  Result<Workflow> wf = parseWorkflowJson(text);
  for (int bits = 0; bits < 8; ++bits) {
    CorrectionConfig config;
    config.correct = (bits & 1) != 0;
    config.kfpReport = (bits & 2) != 0 ? KfpReportMode::kDirect : KfpReportMode::kPersistenceAgent;
    config.exitTaskFailure =
        (bits & 4) != 0 ? ExitTaskFailurePolicy::kFail : ExitTaskFailurePolicy::kIgnore;
    WorkflowRecord projected = projectWorkflow(text, config, now);
    if (!wf) {
      if (projected.rejected != kRejectParse)
        broken("an unreadable workflow is rejected as parse", std::string(projected.rejected));
      continue;
    }
    NextStep step;
    try {
      const Verdict verdict = evaluate(*wf, EvaluateOptions{config.exitTaskFailure});
      step = decideNextStep(*wf, verdict, config, now);
    } catch (const std::exception& e) {
      broken("evaluate/decideNextStep never throw", e.what());
    }
    checkStep(*wf, step);
    if (projected.rejected.size() != 0 && projected.rejected != kRejectTooLarge)
      broken("a readable workflow is projected", projected.rejectDetail);
    if (projected.nextStep != step.kind)
      broken("projectWorkflow decides as decideNextStep", step.why);
  }
  return 0;
}
