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

// The verdict on a corrected object: status.phase is Failed now, so nothing
// is mis-reported, and the nodes still hold the failure that justifies it.
Verdict correctedVerdict() {
  Verdict v = misreported();
  v.reportedPhase = Phase::kFailed;
  v.misreported = false;
  v.cause.reset();
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
  NextStep step =
      decideNextStep(recorded(ann::kActionCorrected), correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kReportToKfp);
}

TEST_F(CorrectionTest, AfterReportTheEventIsEmittedOnceWithAnUnguardedMarker) {
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
  NextStep step = decideNextStep(wf, correctedVerdict(), config_, now());
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
  wf.annotations[std::string(ann::kKfpReverifiedAt)] = "2026-11-28T10:07:01Z";
  step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "done");
}

TEST_F(CorrectionTest, ARejectedReportIsNotRetriedAndIsNamedInTheEvent) {
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kKfpReportError)] = "missing the Run ID label";
  NextStep step = decideNextStep(wf, correctedVerdict(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_NE(step.eventMessage.find("KFP rejected the report: missing the Run ID label"),
            std::string::npos);
}

TEST_F(CorrectionTest, PersistenceAgentModeSkipsTheDirectReport) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  NextStep step =
      decideNextStep(recorded(ann::kActionCorrected), correctedVerdict(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_NE(step.eventMessage.find("persistence agent"), std::string::npos);
}

TEST_F(CorrectionTest, PersistenceAgentModeWaitsForTheAgentThenConfirmsItsReport) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
  NextStep step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "awaiting-persistence-agent");

  // The KFP API server labels the Workflow after the agent's final report.
  wf.labels[std::string(lbl::kPersistedFinalState)] = "true";
  step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kConfirmAgentReport);
  EXPECT_EQ(stepKindName(step.kind), "kfp-agent-confirm");

  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:07:00Z";
  step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kReverifyKfp);  // long past the delay
  wf.annotations[std::string(ann::kKfpReverifiedAt)] = "2026-11-28T10:08:00Z";
  step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "done");
  wf.annotations.erase(std::string(ann::kKfpReverifiedAt));

  // A permanent verify error (the run is gone from KFP) also ends it.
  wf.annotations.erase(std::string(ann::kKfpReportedAt));
  wf.annotations[std::string(ann::kKfpReportError)] = "verify KFP run r: run not found";
  step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "done");
}

TEST_F(CorrectionTest, OnlyCorrectedRunsWaitForThePersistenceAgent) {
  // Observed and exit-task-ignored runs keep their phase and their label:
  // the agent has nothing to re-report.
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  Verdict exitFailed = healthy();
  exitFailed.generation = Generation::kKfpV2Hook;
  exitFailed.exitTaskFailures = {failure("print-op", "Error (exit code 1)")};
  for (std::string_view action : {ann::kActionObserved, ann::kActionExitTaskIgnored}) {
    Workflow wf = recorded(action, Phase::kSucceeded);
    if (action == ann::kActionExitTaskIgnored)
      wf.annotations[kTruePhase] = "Succeeded";
    wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
    config_.correct = action != ann::kActionObserved;
    const Verdict v = action == ann::kActionObserved ? misreported() : exitFailed;
    NextStep step = decideNextStep(wf, v, config_, now());
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

TEST_F(CorrectionTest, AnOverwrittenCorrectionIsReappliedBecauseTheNodesStillSaySo) {
  // Someone put the old phase back after we corrected and reported; the nodes
  // still show the masked failure, so the verdict says mis-reported again.
  Workflow wf = recorded(ann::kActionCorrected, Phase::kSucceeded);
  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
  wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
  NextStep step = decideNextStep(wf, misreported(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  json patch = json::parse(step.patch);
  EXPECT_EQ(patch["status"]["phase"], "Failed");
  EXPECT_TRUE(patch["metadata"]["annotations"][std::string(ann::kKfpReportedAt)].is_null());
  EXPECT_TRUE(patch["metadata"]["annotations"][std::string(ann::kKfpReportAttempts)].is_null());
  EXPECT_EQ(step.note, "record of an earlier state ignored");
}

// KFP's RetryRun (backend/src/common/util/workflow.go GenerateRetryExecution,
// 2.4.0/2.5.0/master) rebuilds the CR from the last reported manifest: our
// annotations come back (true-phase Failed, action corrected, no report
// marker), the phase is Running, then whatever the retry really does.
Workflow retried(Phase outcome) {
  Workflow wf = recorded(ann::kActionCorrected, outcome);
  wf.annotations["pipelines.kubeflow.org/retry-generation"] = "1";  // master only
  return wf;
}

TEST_F(CorrectionTest, AKfpRetryThatTrulySucceedsStaysSucceededAndIsNotReported) {
  for (KfpReportMode mode : {KfpReportMode::kDirect, KfpReportMode::kPersistenceAgent}) {
    config_.kfpReport = mode;
    NextStep step = decideNextStep(retried(Phase::kSucceeded), healthy(), config_, now());
    EXPECT_EQ(step.kind, StepKind::kNone) << kfpReportModeName(mode);
    EXPECT_EQ(step.why, "healthy");
    EXPECT_EQ(step.note, "record of an earlier state ignored");
    // Also with the report and event markers of the earlier attempt present.
    Workflow wf = retried(Phase::kSucceeded);
    wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
    wf.annotations[std::string(ann::kEventEmittedAt)] = "2026-11-28T10:06:01Z";
    EXPECT_EQ(decideNextStep(wf, healthy(), config_, now()).kind, StepKind::kNone);
  }
  // While the retry runs, nothing is touched either.
  Workflow running = retried(Phase::kRunning);
  running.labels.erase(std::string(lbl::kCompleted));
  EXPECT_EQ(decideNextStep(running, misreported(), config_, now()).why, "not-completed");
}

TEST_F(CorrectionTest, AKfpRetryThatMasksAFailureAgainIsCorrectedAgain) {
  // A 2.0–2.3 retried run whose exit task masks a body failure again: a new
  // attempt, recorded afresh (its report markers reset), then reported.
  Workflow wf = retried(Phase::kSucceeded);
  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
  wf.annotations[std::string(ann::kKfpReportAttempts)] = "2";
  NextStep step = decideNextStep(wf, misreported(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  EXPECT_EQ(step.action, ann::kActionCorrected);
  json patch = json::parse(step.patch);
  EXPECT_EQ(patch["status"]["phase"], "Failed");
  const json& a = patch["metadata"]["annotations"];
  EXPECT_TRUE(a[std::string(ann::kKfpReportedAt)].is_null());
  EXPECT_TRUE(a[std::string(ann::kKfpReportAttempts)].is_null());

  // Once recorded, the new attempt is reported.
  Workflow corrected = retried(Phase::kFailed);
  EXPECT_EQ(decideNextStep(corrected, correctedVerdict(), config_, now()).kind,
            StepKind::kReportToKfp);
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

// --- Hostile annotations: garbage in our own annotations never drives an action.

TEST_F(CorrectionTest, AHealthyRunWithABogusRecordIsNeitherPatchedNorReported) {
  Workflow wf = completedRun();
  wf.annotations = {{kTruePhase, "Bogus"},
                    {std::string(ann::kReportedPhase), "Succeeded"},
                    {kAction, "corrected"}};
  NextStep step = decideNextStep(wf, healthy(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, "healthy");
  EXPECT_NE(step.note.find("true-phase is not Succeeded, Failed or Error"), std::string::npos)
      << step.note;
  // The same garbage on a truly mis-reported run: evaluated from its nodes and
  // recorded afresh (every one of our annotations overwritten).
  step = decideNextStep(wf, misreported(), config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  EXPECT_EQ(json::parse(step.patch)["metadata"]["annotations"][kTruePhase], "Failed");
}

TEST_F(CorrectionTest, MalformedRecordsReadAsUnrecorded) {
  const std::vector<std::map<std::string, std::string>> hostile = {
      {{kTruePhase, "Failed"}, {std::string(ann::kReportedPhase), "Succeeded"}},  // no action
      {{kTruePhase, "Failed"}, {std::string(ann::kReportedPhase), "Succeeded"}, {kAction, "nuke"}},
      {{kTruePhase, "failed"},
       {std::string(ann::kReportedPhase), "Succeeded"},
       {kAction, "corrected"}},
      {{kTruePhase, "Failed "},
       {std::string(ann::kReportedPhase), "Succeeded"},
       {kAction, "corrected"}},
      {{kTruePhase, "Running"},
       {std::string(ann::kReportedPhase), "Succeeded"},
       {kAction, "corrected"}},
      {{kTruePhase, "Failed"}, {std::string(ann::kReportedPhase), "5"}, {kAction, "corrected"}},
      {{kTruePhase, "Succeeded"},
       {std::string(ann::kReportedPhase), "Succeeded"},
       {kAction, "corrected"}},
      {{kTruePhase, std::string(600 * 1024, 'F')},
       {std::string(ann::kReportedPhase), "Succeeded"},
       {kAction, "corrected"}},
      {{kAction, "corrected"}},
  };
  for (const auto& annotations : hostile) {
    CorrectionProgress p = readProgress(annotations);
    EXPECT_FALSE(p.recorded) << annotations.begin()->second.substr(0, 20);
    EXPECT_FALSE(p.invalid.empty());
    EXPECT_LE(p.invalid.size(), 200u);  // names the field, does not echo the value
    Workflow wf = completedRun(Phase::kFailed);
    wf.annotations = annotations;
    // A corrected-looking run in each case: never reported, never evented.
    for (const Verdict& v : {healthy(), correctedVerdict()}) {
      NextStep step = decideNextStep(wf, v, config_, now());
      EXPECT_NE(step.kind, StepKind::kReportToKfp);
      EXPECT_NE(step.kind, StepKind::kEmitEvent);
    }
  }
}

TEST_F(CorrectionTest, AForgedCorrectionThatTheNodesDoNotJustifyIsNeverReported) {
  // A tenant sets status.phase Failed and a complete "corrected" record on a
  // run whose nodes all succeeded: no report, no event, no write.
  Workflow wf = recorded(ann::kActionCorrected, Phase::kFailed);
  Verdict v = healthy();
  v.reportedPhase = Phase::kFailed;
  v.truePhase = Phase::kFailed;  // a Failed run stays Failed in the engine's verdict
  NextStep step = decideNextStep(wf, v, config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  // A record whose status.phase is not the recorded true phase: not reported.
  Workflow other = recorded(ann::kActionCorrected, Phase::kSucceeded);
  EXPECT_EQ(decideNextStep(other, healthy(), config_, now()).kind, StepKind::kNone);
  // Error recorded, Failed on the object: not the recorded phase either.
  Workflow mismatch = recorded(ann::kActionCorrected, Phase::kFailed);
  mismatch.annotations[kTruePhase] = "Error";
  EXPECT_EQ(decideNextStep(mismatch, correctedVerdict(), config_, now()).kind, StepKind::kNone);
}

TEST_F(CorrectionTest, ForgedOrSpentReportCountersNeverBuyAReport) {
  for (const std::string& value :
       std::vector<std::string>{"3", "99", "-1", "abc", "", "1e9", std::string(5000, '9')}) {
    Workflow wf = recorded(ann::kActionCorrected);
    wf.annotations[std::string(ann::kKfpReportAttempts)] = value;
    CorrectionProgress p = readProgress(wf.annotations);
    EXPECT_EQ(p.kfpReportAttempts, kMaxKfpReports) << value.substr(0, 10);
    NextStep step = decideNextStep(wf, correctedVerdict(), config_, now());
    ASSERT_EQ(step.kind, StepKind::kEmitEvent) << value.substr(0, 10);
    EXPECT_NE(step.eventMessage.find("Not reported to KFP"), std::string::npos);
  }
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kKfpReportAttempts)] = "2";
  EXPECT_EQ(readProgress(wf.annotations).kfpReportAttempts, 2);
  EXPECT_EQ(decideNextStep(wf, correctedVerdict(), config_, now()).kind, StepKind::kReportToKfp);
}

TEST_F(CorrectionTest, FailuresAnnotationOfAnyShapeNeverThrows) {
  // issue 16: [{"displayName": 5}] threw nlohmann type_error 302 inside the
  // informer's projection and stalled the whole controller.
  const std::vector<std::string> hostile = {
      R"([{"displayName": 5}])",
      R"([{"displayName": null, "message": {"a": 1}, "phase": 7, "nodeName": []}])",
      R"({"displayName": "x"})",
      R"([1, "two", null, [3]])",
      "not json",
      "",
      "[" + std::string(300 * 1024, ' ') + "]",
  };
  for (const std::string& text : hostile) {
    Workflow wf = recorded(ann::kActionCorrected);
    wf.annotations[std::string(ann::kFailures)] = text;
    wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
    NextStep step;
    EXPECT_NO_THROW(step = decideNextStep(wf, correctedVerdict(), config_, now()))
        << text.substr(0, 40);
    EXPECT_EQ(step.kind, StepKind::kEmitEvent);
    EXPECT_LE(step.eventMessage.size(), kMaxEventMessageBytes);
  }
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kFailures)] = R"([{"displayName": 5, "message": "boom"}])";
  wf.annotations[std::string(ann::kKfpReportedAt)] = "2026-11-28T10:06:00Z";
  EXPECT_NE(decideNextStep(wf, correctedVerdict(), config_, now()).eventMessage.find("boom"),
            std::string::npos);
}

TEST_F(CorrectionTest, TheIssue16ObservedRecordWithANumericDisplayNameIsAnnouncedNotThrown) {
  // The exact object of issue 16: action observed, failures [{"displayName": 5}].
  config_.correct = false;
  Workflow wf = recorded(ann::kActionObserved, Phase::kSucceeded);
  wf.annotations[std::string(ann::kFailures)] = R"([{"displayName": 5}])";
  NextStep step;
  ASSERT_NO_THROW(step = decideNextStep(wf, misreported(), config_, now()));
  ASSERT_EQ(step.kind, StepKind::kEmitEvent);
  EXPECT_EQ(step.eventReason, "RunPhaseMisreported");
}

// --- Bounds on what we write.

TEST_F(CorrectionTest, AHugeMessageAndTenThousandFailuresStayWithinTheBudgets) {
  Verdict v = misreported();
  v.failures.clear();
  // One 600 KiB message, then 9,999 more failures with oversized fields.
  for (int i = 0; i < 10000; ++i) {
    Failure f = failure("op-" + std::to_string(i) + std::string(1000, 'n'),
                        std::string(i == 0 ? 600 * 1024 : 2000, 'm'));
    f.nodeName = std::string(2000, 'p');
    v.failures.push_back(std::move(f));
  }
  Workflow wf = completedRun();
  wf.message = std::string(600 * 1024, 'o');
  NextStep step = decideNextStep(wf, v, config_, now());
  ASSERT_EQ(step.kind, StepKind::kRecord);
  EXPECT_LT(step.patch.size(), 32u * 1024);
  json patch = json::parse(step.patch);
  const json& a = patch["metadata"]["annotations"];
  const std::string failuresText = a[std::string(ann::kFailures)];
  EXPECT_LE(failuresText.size(), kFailuresBudgetBytes);
  json failures = json::parse(failuresText);
  ASSERT_FALSE(failures.empty());
  EXPECT_LE(failures.size(), kMaxRecordedFailures);
  for (const json& f : failures) {
    EXPECT_LE(f["message"].get<std::string>().size(), kMaxFailureMessageBytes);
    EXPECT_LE(f["nodeName"].get<std::string>().size(), kMaxFieldBytes);
    EXPECT_LE(f["displayName"].get<std::string>().size(), kMaxFieldBytes);
  }
  EXPECT_LE(a[std::string(ann::kOriginalMessage)].get<std::string>().size(), 1024u);
  const std::string message = patch["status"]["message"];
  EXPECT_LE(message.size(), 8u * 1024);
  EXPECT_NE(message.find("and 9997 more"), std::string::npos);
}

TEST_F(CorrectionTest, BoundedTextCutsOnACharacterBoundary) {
  EXPECT_EQ(boundedText("short", 10), "short");
  // "aééé" is 7 bytes; 5 leave 2 before the 3-byte "…": "a" and half an é.
  EXPECT_EQ(boundedText("a\xC3\xA9\xC3\xA9\xC3\xA9", 5), "a\xE2\x80\xA6");
  EXPECT_EQ(boundedText("a\xC3\xA9\xC3\xA9\xC3\xA9", 6), "a\xC3\xA9\xE2\x80\xA6");
  EXPECT_LE(boundedText(std::string(5000, 'x'), 1024).size(), 1024u);
  EXPECT_EQ(boundedText("abcdef", 2), "");
}

TEST_F(CorrectionTest, ReapplyingACorrectionNeverNestsTheMessage) {
  Workflow wf = completedRun();
  wf.message = "child 'wf-123' failed";
  // First correction: the original is kept in an annotation.
  json patch = json::parse(decideNextStep(wf, misreported(), config_, now()).patch);
  const std::string first = patch["status"]["message"];
  EXPECT_EQ(patch["metadata"]["annotations"][std::string(ann::kOriginalMessage)],
            "child 'wf-123' failed");
  // Then, ten times: a stale writer puts the phase back but keeps our message
  // and annotations; the correction is re-applied.
  for (int i = 0; i < 10; ++i) {
    wf.phase = Phase::kSucceeded;
    wf.message = patch["status"]["message"];
    for (const auto& [k, val] : patch["metadata"]["annotations"].items()) {
      if (val.is_string())
        wf.annotations[k] = val;
      else
        wf.annotations.erase(k);
    }
    NextStep step = decideNextStep(wf, misreported(), config_, now());
    ASSERT_EQ(step.kind, StepKind::kRecord);
    patch = json::parse(step.patch);
    EXPECT_EQ(patch["status"]["message"], first) << i;
  }
  EXPECT_EQ(std::count(first.begin(), first.end(), '|'), 1) << first;
  EXPECT_NE(first.find("original message: child 'wf-123' failed"), std::string::npos);
}

TEST_F(CorrectionTest, AVerifiedCorrectionIsReverifiedOnceAfterTheDelay) {
  Workflow wf = recorded(ann::kActionCorrected);
  wf.annotations[std::string(ann::kEventEmittedAt)] = formatRfc3339(now());
  wf.annotations[std::string(ann::kKfpReportedAt)] = formatRfc3339(now());
  NextStep step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.why, kAwaitingKfpReverify);
  EXPECT_EQ(step.requeueAfter, std::chrono::milliseconds(kKfpReverifyDelay));
  clock_.advance(kKfpReverifyDelay - std::chrono::milliseconds(1));
  step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kNone);
  EXPECT_EQ(step.requeueAfter, std::chrono::milliseconds(1));
  clock_.advance(std::chrono::milliseconds(1));
  step = decideNextStep(wf, correctedVerdict(), config_, now());
  EXPECT_EQ(step.kind, StepKind::kReverifyKfp);
  EXPECT_EQ(stepKindName(step.kind), "kfp-reverify");

  // Not without a KFP client, not after kfp-report-error, not twice.
  CorrectionConfig noClient = config_;
  noClient.kfpReverify = false;
  EXPECT_EQ(decideNextStep(wf, correctedVerdict(), noClient, now()).why, "done");
  Workflow failed = wf;
  failed.annotations[std::string(ann::kKfpReportError)] = "x";
  EXPECT_EQ(decideNextStep(failed, correctedVerdict(), config_, now()).why, "done");
  wf.annotations[std::string(ann::kKfpReverifiedAt)] = formatRfc3339(now());
  EXPECT_EQ(decideNextStep(wf, correctedVerdict(), config_, now()).why, "done");
}

TEST_F(CorrectionTest, TheRegressionPatchReopensTheReportWithinTheCap) {
  json p = json::parse(kfpStateRegressedPatch(KfpReportMode::kDirect, 1, "RUNNING"));
  const json& a = p["metadata"]["annotations"];
  EXPECT_TRUE(a[std::string(ann::kKfpReportedAt)].is_null());
  EXPECT_TRUE(a[std::string(ann::kKfpReverifiedAt)].is_null());
  EXPECT_EQ(a[std::string(ann::kKfpReportAttempts)], "1");
  EXPECT_FALSE(a.contains(std::string(ann::kKfpReportError)));
  EXPECT_FALSE(p["metadata"].contains("labels"));

  p = json::parse(kfpStateRegressedPatch(KfpReportMode::kPersistenceAgent, 2, "SUCCEEDED"));
  EXPECT_TRUE(p["metadata"]["labels"][std::string(lbl::kPersistedFinalState)].is_null());

  p = json::parse(
      kfpStateRegressedPatch(KfpReportMode::kPersistenceAgent, kMaxKfpReports, "RUNNING"));
  EXPECT_NE(p["metadata"]["annotations"][std::string(ann::kKfpReportError)].get<std::string>().find(
                "went back from FAILED to RUNNING"),
            std::string::npos);
  EXPECT_FALSE(p["metadata"].contains("labels"));  // no more agent reports either
}

TEST(RecordedTime, ReadsWhatFormatRfc3339WritesAndRefusesTheUnrepresentable) {
  const Clock::WallTime t{std::chrono::seconds(1798000000)};
  ASSERT_TRUE(parseRecordedTime(formatRfc3339(t)).has_value());
  EXPECT_EQ(*parseRecordedTime(formatRfc3339(t)), t);
  EXPECT_EQ(*parseRecordedTime("1970-01-01T00:00:00Z"), Clock::WallTime{});
  for (const char* bad : {"", "yesterday", "2026-02-30T00:00:00Z", "2026-12-07T24:00:00Z",
                          "2026-12-07 21:30:49Z", "2026-12-07T21:30:49", "+026-12-07T21:30:49Z",
                          "2026-12-07T21:3a:49Z", "9999-12-31T23:59:59Z", "2262-04-12T00:00:00Z"}) {
    EXPECT_FALSE(parseRecordedTime(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace exitrec
