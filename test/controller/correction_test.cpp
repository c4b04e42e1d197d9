// The correction state machine (controller/correction.h), decision by decision.

#include "controller/correction.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fake_clock.h"
#include "controller/annotations.h"

namespace exitrec {
namespace {

using nlohmann::json;

const std::string kTruePhase(ann::kTruePhase);
const std::string kAction(ann::kAction);

Workflow completedRun(Phase phase = Phase::kSucceeded) {
  Workflow wf;
  wf.name = "wf";
  wf.namespace_ = "kubeflow";
  wf.uid = "uid-1";
  wf.resourceVersion = "42";
  wf.phase = phase;
  wf.message = "";
  wf.finishedAt = "2026-11-28T10:05:00Z";
  wf.labels = {{std::string(lbl::kCompleted), "true"},
               {std::string(lbl::kPhase), std::string(phaseName(phase))},
               {std::string(lbl::kRunId), "run-1"}};
  return wf;
}

Failure failure(std::string name, std::string message, Phase phase = Phase::kFailed) {
  Failure f;
  f.displayName = std::move(name);
  f.message = std::move(message);
  f.templateName = "system-container-impl";
  f.phase = phase;
  f.podName = "wf-pod";
  f.finishedAt = "2026-11-28T10:04:00Z";
  return f;
}

Verdict misreported() {
  Verdict v;
  v.namespace_ = "kubeflow";
  v.name = "wf";
  v.runId = "run-1";
  v.generation = Generation::kKfpV2Sibling;
  v.reportedPhase = Phase::kSucceeded;
  v.truePhase = Phase::kFailed;
  v.completed = true;
  v.misreported = true;
  v.cause = "exit-task-masked-failure";
  v.failures = {failure("fail-op", "Error (exit code 1)")};
  return v;
}

Verdict healthy() {
  Verdict v = misreported();
  v.truePhase = Phase::kSucceeded;
  v.misreported = false;
  v.cause.reset();
  v.failures.clear();
  return v;
}

class CorrectionTest : public ::testing::Test {
 protected:
  Clock::WallTime now() const { return clock_.wallNow(); }
  FakeClock clock_;
  CorrectionConfig config_;
};

TEST_F(CorrectionTest, NeverTouchesARunThatIsNotCompleted) {
  Workflow wf = completedRun();
  wf.labels[std::string(lbl::kCompleted)] = "false";
  EXPECT_EQ(decideNextStep(wf, misreported(), config_, now()).why, "not-completed");
  wf.labels.erase(std::string(lbl::kCompleted));
  EXPECT_EQ(decideNextStep(wf, misreported(), config_, now()).why, "not-completed");
  // Completed label but a phase that is not final (e.g. a retry in flight).
  Workflow running = completedRun(Phase::kRunning);
  NextStep step = decideNextStep(running, misreported(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "not-completed");
}

TEST_F(CorrectionTest, NeverWritesToPlainArgoWorkflows) {
  Workflow wf = completedRun();
  wf.labels.erase(std::string(lbl::kRunId));
  NextStep step = decideNextStep(wf, misreported(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "not-kfp-run");
}

TEST_F(CorrectionTest, HealthyAndNotEvaluableRunsNeedNothing) {
  EXPECT_EQ(decideNextStep(completedRun(), healthy(), config_, now()).why, "healthy");
  Verdict offloaded = misreported();
  offloaded.evaluable = false;
  offloaded.misreported = false;
  EXPECT_EQ(decideNextStep(completedRun(), offloaded, config_, now()).why, "not-evaluable");
}

TEST_F(CorrectionTest, RecordPatchInCorrectionModeIsGuardedAndRewritesPhase) {
  Workflow wf = completedRun();
  wf.message = "original words";
  NextStep step = decideNextStep(wf, misreported(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  EXPECT_EQ(step.action, ann::kActionCorrected);
  json patch = json::parse(step.patch);
  EXPECT_EQ(patch["metadata"]["resourceVersion"], "42");
  const json& a = patch["metadata"]["annotations"];
  EXPECT_EQ(a[kTruePhase], "Failed");
  EXPECT_EQ(a[std::string(ann::kReportedPhase)], "Succeeded");
  EXPECT_EQ(a[std::string(ann::kCause)], "exit-task-masked-failure");
  EXPECT_EQ(a[kAction], "corrected");
  EXPECT_EQ(a[std::string(ann::kCorrectedAt)], formatRfc3339(now()));
  EXPECT_EQ(a[std::string(ann::kRecordedAt)], formatRfc3339(now()));
  json failures = json::parse(a[std::string(ann::kFailures)].get<std::string>());
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0]["displayName"], "fail-op");
  EXPECT_EQ(failures[0]["message"], "Error (exit code 1)");
  // The later steps' markers are reset by a (re-)record.
  EXPECT_TRUE(a[std::string(ann::kKfpReportedAt)].is_null());
  EXPECT_TRUE(a[std::string(ann::kEventEmittedAt)].is_null());

  EXPECT_EQ(patch["status"]["phase"], "Failed");
  const std::string message = patch["status"]["message"];
  EXPECT_NE(message.find("fail-op: Error (exit code 1)"), std::string::npos) << message;
  EXPECT_NE(message.find("original words"), std::string::npos) << message;
  EXPECT_NE(message.find("truly Failed"), std::string::npos) << message;
  EXPECT_EQ(patch["metadata"]["labels"][std::string(lbl::kPhase)], "Failed");
  // Direct mode leaves KFP's final-state label alone; nobody removes `completed`.
  EXPECT_FALSE(patch["metadata"]["labels"].contains(std::string(lbl::kPersistedFinalState)));
  EXPECT_FALSE(patch["metadata"]["labels"].contains(std::string(lbl::kCompleted)));
}

TEST_F(CorrectionTest, ErrorTruePhaseIsWrittenAsError) {
  Verdict v = misreported();
  v.truePhase = Phase::kError;
  v.failures = {failure("driver", "pod deleted", Phase::kError)};
  json patch = json::parse(decideNextStep(completedRun(), v, config_, now()).patch);
  EXPECT_EQ(patch["status"]["phase"], "Error");
  EXPECT_EQ(patch["metadata"]["labels"][std::string(lbl::kPhase)], "Error");
}

TEST_F(CorrectionTest, PersistenceAgentModeRemovesTheFinalStateLabelInTheSamePatch) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  json patch = json::parse(decideNextStep(completedRun(), misreported(), config_, now()).patch);
  ASSERT_TRUE(patch["metadata"]["labels"].contains(std::string(lbl::kPersistedFinalState)));
  EXPECT_TRUE(patch["metadata"]["labels"][std::string(lbl::kPersistedFinalState)].is_null());
  EXPECT_EQ(patch["status"]["phase"], "Failed");
}

TEST_F(CorrectionTest, ObserveModeRecordsAnnotationsOnly) {
  config_.correct = false;
  NextStep step = decideNextStep(completedRun(), misreported(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  json patch = json::parse(step.patch);
  EXPECT_FALSE(patch.contains("status"));
  EXPECT_FALSE(patch["metadata"].contains("labels"));
  EXPECT_EQ(patch["metadata"]["annotations"][kAction], "observed");
  EXPECT_FALSE(patch["metadata"]["annotations"].contains(std::string(ann::kCorrectedAt)));
}

Workflow recorded(std::string_view action, Phase phase = Phase::kFailed) {
  Workflow wf = completedRun(phase);
  wf.annotations = {{kTruePhase, "Failed"},
                    {std::string(ann::kReportedPhase), "Succeeded"},
                    {std::string(ann::kCause), "exit-task-masked-failure"},
                    {std::string(ann::kFailures),
                     R"j([{"displayName":"fail-op","message":"Error (exit code 1)",)j"
                     R"j("templateName":"t","phase":"Failed","podName":"p","finishedAt":null}])j"},
                    {kAction, std::string(action)}};
  return wf;
}

TEST_F(CorrectionTest, AfterRecordDirectModeReportsToKfp) {
  // The verdict on the corrected object is no longer "misreported".
  NextStep step = decideNextStep(recorded(ann::kActionCorrected), healthy(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kReportToKfp);
}

TEST_F(CorrectionTest, AfterReportTheEventIsEmittedOnceWithAnUnguardedMarker) {
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
  NextStep step = decideNextStep(wf, healthy(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_EQ(step.eventType, "Warning");
  EXPECT_EQ(step.eventReason, "RunPhaseCorrected");
  EXPECT_NE(step.eventMessage.find("from Succeeded to Failed"), std::string::npos);
  EXPECT_NE(step.eventMessage.find("fail-op: Error (exit code 1)"), std::string::npos);
  EXPECT_NE(step.eventMessage.find("verified FAILED"), std::string::npos);
  json patch = json::parse(step.patch);
  EXPECT_FALSE(patch["metadata"].contains("resourceVersion"));
  EXPECT_EQ(patch["metadata"]["annotations"][std::string(ann::kEventEmittedAt)],
            formatRfc3339(now()));

  wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
  step = decideNextStep(wf, healthy(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "done");
}

TEST_F(CorrectionTest, ARejectedReportIsNotRetriedAndIsNamedInTheEvent) {
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kKfpReportError)] = "missing the Run ID label";
  NextStep step = decideNextStep(wf, healthy(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_NE(step.eventMessage.find("KFP rejected the report: missing the Run ID label"),
            std::string::npos);
}

TEST_F(CorrectionTest, PersistenceAgentModeSkipsTheDirectReport) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  NextStep step = decideNextStep(recorded(ann::kActionCorrected), healthy(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_NE(step.eventMessage.find("persistence agent"), std::string::npos);
}

TEST_F(CorrectionTest, PersistenceAgentModeWaitsForTheAgentThenConfirmsItsReport) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
  NextStep step = decideNextStep(wf, healthy(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "awaiting-persistence-agent");

  // The KFP API server labels the Workflow after the agent's final report.
  wf.labels[std::string(lbl::kPersistedFinalState)] = "true";
  step = decideNextStep(wf, healthy(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kConfirmAgentReport);
  EXPECT_EQ(stepKindName(step.kind), "kfp-agent-confirm");

  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:07:00Z";
  step = decideNextStep(wf, healthy(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "done");

  // A permanent verify error (the run is gone from KFP) also ends it.
  wf.annotations.erase(std::string(ann::kKfpReportedAt));
  wf.annotations[std::string(ann::kKfpReportError)] = "verify KFP run r: run not found";
  step = decideNextStep(wf, healthy(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "done");
}

TEST_F(CorrectionTest, OnlyCorrectedRunsWaitForThePersistenceAgent) {
  // Observed and exit-task-ignored runs keep their phase and their label:
  // the agent has nothing to re-report.
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  for (std::string_view action : {ann::kActionObserved, ann::kActionExitTaskIgnored}) {
    Workflow wf = recorded(action, Phase::kSucceeded);
    wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
    config_.correct = action != ann::kActionObserved;
    NextStep step = decideNextStep(wf, healthy(), config_, now());
    EXPECT_EQ(step.kind, StepKind::kNone) << action;
    EXPECT_EQ(step.why, "done") << action;
  }
}

TEST_F(CorrectionTest, ObservedRunsGetAMisreportedEventAndNoReport) {
  config_.correct = false;
  Workflow wf = recorded(ann::kActionObserved, Phase::kSucceeded);
  NextStep step = decideNextStep(wf, misreported(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_EQ(step.eventReason, "RunPhaseMisreported");
}

TEST_F(CorrectionTest, AnObservedRunIsCorrectedOnceCorrectionIsTurnedOn) {
  Workflow wf = recorded(ann::kActionObserved, Phase::kSucceeded);
  wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
  NextStep step = decideNextStep(wf, misreported(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  EXPECT_EQ(step.action, ann::kActionCorrected);
}

TEST_F(CorrectionTest, AnOverwrittenCorrectionIsReapplied) {
  // Someone put the old phase back after we corrected and reported.
  Workflow wf = recorded(ann::kActionCorrected, Phase::kSucceeded);
  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
  wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
  NextStep step = decideNextStep(wf, healthy(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  json patch = json::parse(step.patch);
  EXPECT_EQ(patch["status"]["phase"], "Failed");
  EXPECT_TRUE(patch["metadata"]["annotations"][std::string(ann::kKfpReportedAt)].is_null());
}

TEST_F(CorrectionTest, IgnoredExitTaskFailureIsRecordedWithoutTouchingThePhase) {
  Verdict v = healthy();
  v.generation = Generation::kKfpV2Hook;
  v.exitTaskFailures = {failure("print-op", "Error (exit code 1)")};
  NextStep step = decideNextStep(completedRun(), v, config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  EXPECT_EQ(step.action, ann::kActionExitTaskIgnored);
  json patch = json::parse(step.patch);
  EXPECT_FALSE(patch.contains("status"));
  EXPECT_FALSE(patch["metadata"].contains("labels"));
  const json& a = patch["metadata"]["annotations"];
  EXPECT_EQ(a[std::string(ann::kCause)], "exit-task-failed");
  EXPECT_EQ(a[kTruePhase], "Succeeded");
  EXPECT_NE(a[std::string(ann::kFailures)].get<std::string>().find("print-op"), std::string::npos);

  // Then: an ExitTaskFailed event, and no KFP report.
  Workflow wf = completedRun();
  wf.annotations = {{kTruePhase, "Succeeded"},
                    {std::string(ann::kReportedPhase), "Succeeded"},
                    {kAction, std::string(ann::kActionExitTaskIgnored)}};
  step = decideNextStep(wf, v, config_, now());
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_EQ(step.eventReason, "ExitTaskFailed");
}

TEST_F(CorrectionTest, ExitTaskFailuresOnOtherGenerationsOrUnderFailPolicyAreNotIgnoredRecords) {
  Verdict v = healthy();
  v.generation = Generation::kKfpV2Sibling;
  v.exitTaskFailures = {failure("print-op", "Error (exit code 1)")};
  EXPECT_EQ(decideNextStep(completedRun(), v, config_, now()).why, "healthy");
  // Under `fail` the engine marks the run mis-reported; the normal path applies.
  config_.exitTaskFailure = ExitTaskFailurePolicy::kFail;
  v.generation = Generation::kKfpV2Hook;
  EXPECT_EQ(decideNextStep(completedRun(), v, config_, now()).why, "healthy");
}

TEST_F(CorrectionTest, FailuresAnnotationIsCapped) {
  Verdict v = misreported();
  v.failures.clear();
  for (int i = 0; i < 50; ++i)
    v.failures.push_back(failure("op-" + std::to_string(i), "x"));
  json patch = json::parse(decideNextStep(completedRun(), v, config_, now()).patch);
  json failures =
      json::parse(patch["metadata"]["annotations"][std::string(ann::kFailures)].get<std::string>());
  EXPECT_EQ(failures.size(), kMaxRecordedFailures);
  EXPECT_NE(patch["status"]["message"].get<std::string>().find("and 47 more"), std::string::npos);
}

TEST_F(CorrectionTest, ReadProgressReflectsTheMarkers) {
  Workflow wf = recorded(ann::kActionCorrected);
  CorrectionProgress p = readProgress(wf.annotations);
  EXPECT_TRUE(p.recorded);
  EXPECT_EQ(p.truePhase, Phase::kFailed);
  EXPECT_EQ(p.reportedPhase, Phase::kSucceeded);
  EXPECT_FALSE(p.kfpReported);
  EXPECT_FALSE(p.eventEmitted);
  EXPECT_FALSE(readProgress({}).recorded);
}

TEST_F(CorrectionTest, ReportMarkersAreUnguardedSingleAnnotationPatches) {
  json ok = json::parse(kfpReportedPatch(now()));
  EXPECT_EQ(ok,
            json::parse(R"({"metadata":{"annotations":{"exit-reconciler.io/kfp-reported-at":")" +
                        formatRfc3339(now()) + "\"}}}"));
  json bad = json::parse(kfpReportFailedPatch(std::string(5000, 'x')));
  EXPECT_EQ(
      bad["metadata"]["annotations"][std::string(ann::kKfpReportError)].get<std::string>().size(),
      1024u);
}

}  // namespace
}  // namespace exitrec
