// The Reconciler driving the correction state machine against fakes, on
// synthetic KFP runs evaluated by the real engine: the correction steps,
// their retries, the report modes and the exit-task policy.

#include "test/controller/reconciler_fixture.h"

namespace exitrec::reconciler_test {
namespace {

TEST_F(ReconcilerTest, MisreportedRunIsRecordedReportedAndAnnouncedInOnePass) {
  const std::string name = add(masked("masked"));
  ReconcileOutcome r = reconcile(name);
  EXPECT_EQ(r.kind, kAwaitsReverify) << r.detail;
  json wf = object(name);
  EXPECT_EQ(wf["status"]["phase"], "Failed");
  EXPECT_EQ(wf["metadata"]["labels"][std::string(lbl::kPhase)], "Failed");
  EXPECT_EQ(wf["metadata"]["labels"][std::string(lbl::kCompleted)], "true");
  EXPECT_EQ(annotation(wf, ann::kTruePhase), "Failed");
  EXPECT_EQ(annotation(wf, ann::kReportedPhase), "Succeeded");
  EXPECT_EQ(annotation(wf, ann::kAction), "corrected");
  EXPECT_FALSE(annotation(wf, ann::kCause).empty());
  json failures = json::parse(annotation(wf, ann::kFailures));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0]["message"], "Error (exit code 1)");
  EXPECT_EQ(failures[0]["nodeName"], "masked.root.exit-handler-1.op-0.executor");
  // Messages name the task, not KFP's generic "executor" node.
  EXPECT_NE(wf["status"]["message"].get<std::string>().find("op-0: Error (exit code 1)"),
            std::string::npos)
      << wf["status"]["message"];
  EXPECT_FALSE(annotation(wf, ann::kKfpReportedAt).empty());
  EXPECT_FALSE(annotation(wf, ann::kEventEmittedAt).empty());

  // KFP got the patched object: Failed, with the resourceVersion of the patch.
  ASSERT_EQ(kfp_.reported.size(), 1u);
  EXPECT_EQ(kfp_.reported[0]["status"]["phase"], "Failed");
  EXPECT_EQ(annotation(kfp_.reported[0], ann::kTruePhase), "Failed");
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_EQ(events_.events[0].reason, "RunPhaseCorrected");
  EXPECT_EQ(events_.events[0].type, "Warning");
  EXPECT_EQ(events_.events[0].target.name, name);
  EXPECT_NE(events_.events[0].message.find("op-0: Error (exit code 1)"), std::string::npos)
      << events_.events[0].message;
  EXPECT_EQ(observer_.misreported, 1);
  EXPECT_EQ(observer_.verified, 1);
  ASSERT_TRUE(observer_.lastLatency.has_value());

  // Idempotent: a second pass changes nothing.
  const int patches = api_.appliedPatches;
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_EQ(api_.appliedPatches, patches);
  EXPECT_EQ(kfp_.attempts, 1);
  EXPECT_EQ(events_.events.size(), 1u);
}

TEST_F(ReconcilerTest, HealthyRunningAndPlainArgoRunsAreLeftUntouched) {
  KfpRunSpec healthy;
  healthy.name = "healthy";
  KfpRunSpec running = masked("running");
  running.completed = false;
  KfpRunSpec argo = masked("argo");
  argo.shape = RunShape::kArgo;
  KfpRunSpec hookFailed = masked("hook-body-failed");  // ≥2.4: already Failed
  hookFailed.shape = RunShape::kV2Hook;
  for (const KfpRunSpec& s : {healthy, running, argo, hookFailed}) {
    add(s);
    EXPECT_EQ(reconcile(s.name).kind, Kind::kDone) << s.name;
  }
  EXPECT_EQ(api_.patches.size(), 0u);
  EXPECT_EQ(kfp_.attempts, 0);
  EXPECT_TRUE(events_.events.empty());
}

TEST_F(ReconcilerTest, ConflictOnTheRecordPatchRefetchesAndDecidesAgain) {
  const std::string name = add(masked("conflict"));
  api_.concurrentWritesBeforeNextPatch = 1;
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_EQ(api_.conflicts, 1);
  json wf = object(name);
  EXPECT_EQ(wf["status"]["phase"], "Failed");
  // The other writer's change survived; exactly one report and one event.
  EXPECT_FALSE(annotation(wf, "other-writer").empty());
  EXPECT_EQ(kfp_.reported.size(), 1u);
  EXPECT_EQ(events_.events.size(), 1u);
  EXPECT_NE(std::find(observer_.steps.begin(), observer_.steps.end(), "record:conflict"),
            observer_.steps.end());
}

TEST_F(ReconcilerTest, EndlessConflictsGiveTheKeyBackToTheRateLimiter) {
  const std::string name = add(masked("hot"));
  api_.concurrentWritesBeforeNextPatch = 100;
  ReconcileOutcome r = reconcile(name);
  EXPECT_EQ(r.kind, Kind::kRetry);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->code, ErrorCode::kConflict);
  EXPECT_EQ(object(name)["status"]["phase"], "Succeeded");
}

TEST_F(ReconcilerTest, KfpOutageIsRetriedThroughTheQueueAndReportedOnceItEnds) {
  const std::string name = add(masked("outage"));
  kfp_.reportErrors = {Error(ErrorCode::kTransient, "503 Service Unavailable"),
                       Error(ErrorCode::kTransient, "503 Service Unavailable")};
  EXPECT_EQ(reconcile(name).kind, Kind::kRetry);
  EXPECT_EQ(reconcile(name).kind, Kind::kRetry);
  json wf = object(name);
  EXPECT_EQ(wf["status"]["phase"], "Failed");  // recorded before the outage mattered
  EXPECT_TRUE(annotation(wf, ann::kKfpReportedAt).empty());
  EXPECT_TRUE(events_.events.empty());
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_EQ(kfp_.reported.size(), 1u);
  EXPECT_EQ(kfp_.attempts, 3);
  EXPECT_EQ(events_.events.size(), 1u);
  // Only one record patch was ever applied (no re-correction on retries).
  int records = 0;
  for (const std::string& p : api_.patches)
    records += p.find("\"status\"") != std::string::npos;
  EXPECT_EQ(records, 1);
}

TEST_F(ReconcilerTest, KfpBadRequestIsRecordedAndNotRetried) {
  const std::string name = add(masked("rejected"));
  Error bad(ErrorCode::kInvalid, "missing the Run ID label");
  bad.httpStatus = 400;
  kfp_.reportErrors = {bad};
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  json wf = object(name);
  EXPECT_EQ(annotation(wf, ann::kKfpReportError), "missing the Run ID label");
  EXPECT_TRUE(annotation(wf, ann::kKfpReportedAt).empty());
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_NE(events_.events[0].message.find("KFP rejected"), std::string::npos);
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  EXPECT_EQ(kfp_.attempts, 1);
}

TEST_F(ReconcilerTest, VerifyMismatchIsRetried) {
  const std::string name = add(masked("stale-kfp"));
  kfp_.stickyState = "SUCCEEDED";
  ReconcileOutcome r = reconcile(name);
  EXPECT_EQ(r.kind, Kind::kRetry);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_NE(r.error->message.find("SUCCEEDED"), std::string::npos);
  EXPECT_TRUE(annotation(object(name), ann::kKfpReportedAt).empty());
  kfp_.stickyState.reset();
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_FALSE(annotation(object(name), ann::kKfpReportedAt).empty());
}

TEST_F(ReconcilerTest, ACrashBetweenStepsResumesAtTheStepThatDidNotFinish) {
  const std::string name = add(masked("crash"));
  // The event step fails transiently: the process "dies" after the report.
  events_.errors = {Error(ErrorCode::kTransient, "connection refused")};
  EXPECT_EQ(reconcile(name).kind, Kind::kRetry);
  EXPECT_EQ(kfp_.attempts, 1);
  // A new process (fresh reconciler, same store) resumes at the event.
  rebuild();
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_EQ(kfp_.attempts, 1);
  EXPECT_EQ(events_.events.size(), 1u);
}

TEST_F(ReconcilerTest, PermanentEventFailureDoesNotBlockTheKey) {
  const std::string name = add(masked("rbac"));
  events_.errors = {Error(ErrorCode::kForbidden, "events is forbidden")};
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_FALSE(annotation(object(name), ann::kEventEmittedAt).empty());
}

TEST_F(ReconcilerTest, ObserveModeRecordsAndWarnsWithoutCorrecting) {
  config_.correct = false;
  rebuild();
  const std::string name = add(masked("observed"));
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  json wf = object(name);
  EXPECT_EQ(wf["status"]["phase"], "Succeeded");
  EXPECT_EQ(annotation(wf, ann::kAction), "observed");
  EXPECT_EQ(kfp_.attempts, 0);
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_EQ(events_.events[0].reason, "RunPhaseMisreported");
}

TEST_F(ReconcilerTest, PersistenceAgentModeDropsTheFinalStateLabelAndDoesNotReport) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  rebuild();
  KfpRunSpec spec = masked("agent");
  api_.put(makeKfpRunJson(spec));
  api_.mutate(kNs, spec.name,
              [](json& wf) { wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  json wf = object(spec.name);
  EXPECT_FALSE(wf["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  EXPECT_EQ(wf["status"]["phase"], "Failed");
  EXPECT_EQ(kfp_.attempts, 0);
  EXPECT_EQ(events_.events.size(), 1u);
}

// After the correction the agent re-reports and the KFP API server puts the
// final-state label back; the next reconcile verifies the run state and marks
// the report.
TEST_F(ReconcilerTest, PersistenceAgentModeVerifiesTheRunOnceTheAgentHasReported) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  rebuild();
  KfpRunSpec spec = masked("agent-verified");
  spec.runId = "run-agent-verified";
  add(spec);
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  EXPECT_EQ(annotation(object(spec.name), ann::kKfpReportedAt), "");
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);  // still waiting: nothing to do
  EXPECT_EQ(observer_.verified, 0);

  api_.mutate(kNs, spec.name,
              [](json& wf) { wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
  // A report of a snapshot older than our patch won (KFP 2.0-2.16): KFP says
  // SUCCEEDED and labelled the CR, so the agent would skip it until its TTL.
  // The controller drops the label again so that the agent re-reports.
  kfp_.states[spec.runId] = "SUCCEEDED";
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  json wf = object(spec.name);
  EXPECT_EQ(annotation(wf, ann::kKfpReportedAt), "");
  EXPECT_FALSE(wf["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  EXPECT_EQ(annotation(wf, ann::kKfpReportAttempts), "1");
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);  // awaiting the agent again
  EXPECT_EQ(annotation(object(spec.name), ann::kKfpReportAttempts), "1");

  api_.mutate(kNs, spec.name,
              [](json& w) { w["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
  kfp_.states[spec.runId] = "FAILED";
  EXPECT_EQ(reconcile(spec.name).kind, kAwaitsReverify);
  EXPECT_EQ(annotation(object(spec.name), ann::kKfpReportedAt), formatRfc3339(clock_.wallNow()));
  EXPECT_EQ(kfp_.attempts, 0);  // never POSTed: the agent reports in this mode
  EXPECT_EQ(observer_.verified, 1);
  EXPECT_EQ(observer_.steps.back(), "kfp-agent-confirm:success");
  EXPECT_EQ(events_.events.size(), 1u);
}

TEST_F(ReconcilerTest, PersistenceAgentModeAsksTheAgentAgainABoundedNumberOfTimes) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  rebuild();
  const std::string name = add(masked("agent-stale"));
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  for (int i = 0; i < 5; ++i) {
    // The agent reports, KFP labels the CR, but a stale report keeps winning.
    api_.mutate(kNs, name,
                [](json& w) { w["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
    EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  }
  json wf = object(name);
  EXPECT_NE(annotation(wf, ann::kKfpReportError).find("not confirmed FAILED after 3 agent reports"),
            std::string::npos)
      << annotation(wf, ann::kKfpReportError);
  EXPECT_EQ(annotation(wf, ann::kKfpReportAttempts), "2");
  EXPECT_EQ(wf["metadata"]["labels"]["pipeline/persistedFinalState"], "true");  // left alone
  EXPECT_EQ(kfp_.attempts, 0);
}

TEST_F(ReconcilerTest, DirectModeRecordsAVerifyThatCanNeverSucceedInsteadOfRetryingIt) {
  const std::string name = add(masked("verify-gone"));
  kfp_.forgetRunOnReport = true;  // the run is deleted from KFP right after our report
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  json wf = object(name);
  EXPECT_NE(annotation(wf, ann::kKfpReportError).find("the run is gone from KFP"),
            std::string::npos)
      << annotation(wf, ann::kKfpReportError);
  EXPECT_EQ(annotation(wf, ann::kKfpReportedAt), "");
  EXPECT_EQ(kfp_.attempts, 1);  // reported once, not again
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  EXPECT_EQ(kfp_.attempts, 1);
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_NE(events_.events[0].message.find("answered NotFound"), std::string::npos);
}

TEST_F(ReconcilerTest, PersistenceAgentModeRecordsARunKfpNoLongerHasAndStops) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  rebuild();
  const std::string name = add(masked("agent-run-deleted"));
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  api_.mutate(kNs, name,
              [](json& wf) { wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
  // The run is deleted from KFP: the GET answers NotFound.
  kfp_.states.erase(runId(name));
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  json wf = object(name);
  EXPECT_NE(annotation(wf, ann::kKfpReportError).find("after the report: the run is gone from KFP"),
            std::string::npos);
  EXPECT_EQ(annotation(wf, ann::kKfpReportedAt), "");
  EXPECT_EQ(observer_.unknownRuns, 1);
  EXPECT_EQ(observer_.steps.back(), "kfp-agent-confirm:success");  // the marker patch
  EXPECT_EQ(observer_.steps[observer_.steps.size() - 2], "kfp-agent-confirm:permanent");
  const std::size_t steps = observer_.steps.size();
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);  // not retried
  EXPECT_EQ(observer_.steps.size(), steps);
  EXPECT_EQ(observer_.verified, 0);
}

TEST_F(ReconcilerTest, PersistenceAgentModeWithoutAKfpClientTakesTheLabelAsConfirmation) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  reconciler_ = std::make_unique<Reconciler>(api_, nullptr, events_, clock_, config_, &observer_);
  const std::string name = add(masked("agent-label"));
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  api_.mutate(kNs, name,
              [](json& wf) { wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  EXPECT_FALSE(annotation(object(name), ann::kKfpReportedAt).empty());
  EXPECT_EQ(observer_.verified, 1);
}

TEST_F(ReconcilerTest, ExitTaskFailureOnHookRunsFollowsThePolicy) {
  KfpRunSpec spec;
  spec.shape = RunShape::kV2Hook;
  spec.name = "exit-failed";
  spec.exitTaskFails = true;
  add(spec);
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  json wf = object(spec.name);
  EXPECT_EQ(wf["status"]["phase"], "Succeeded");  // ignore: phase left alone
  EXPECT_EQ(annotation(wf, ann::kAction), "exit-task-ignored");
  EXPECT_EQ(annotation(wf, ann::kCause), "exit-task-failed");
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_EQ(events_.events[0].reason, "ExitTaskFailed");
  EXPECT_EQ(kfp_.attempts, 0);

  config_.exitTaskFailure = ExitTaskFailurePolicy::kFail;
  rebuild();
  spec.name = "exit-failed-strict";
  add(spec);
  EXPECT_EQ(reconcile(spec.name).kind, kAwaitsReverify);
  wf = object(spec.name);
  EXPECT_EQ(wf["status"]["phase"], "Failed");
  EXPECT_EQ(annotation(wf, ann::kAction), "corrected");
  EXPECT_EQ(kfp_.reported.size(), 1u);
}

TEST_F(ReconcilerTest, GoneAndTransientGetErrorsAreClassified) {
  EXPECT_EQ(reconcile("never-existed").kind, Kind::kDone);
  const std::string name = add(masked("flaky"));
  api_.getErrors = {Error(ErrorCode::kTransient, "connection reset")};
  EXPECT_EQ(reconcile(name).kind, Kind::kRetry);
  api_.patchErrors = {Error(ErrorCode::kForbidden, "workflows is forbidden")};
  EXPECT_EQ(reconcile(name).kind, Kind::kDrop);
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
}

}  // namespace
}  // namespace exitrec::reconciler_test
