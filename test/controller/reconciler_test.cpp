// The Reconciler driving the correction state machine against fakes, on
// synthetic KFP runs evaluated by the real engine.

#include "controller/reconciler.h"

#include <gtest/gtest.h>

#include "common/fake_clock.h"
#include "controller/annotations.h"
#include "controller/workflow_record.h"
#include "sim/kfp/kfp_run_factory.h"
#include "test/controller/fakes.h"

namespace exitrec {
namespace {

using Kind = ReconcileOutcome::Kind;
// What a pass that leaves a correction verified in KFP returns: the key comes
// back after kKfpReverifyDelay to read KFP's state once more.
constexpr Kind kAwaitsReverify = Kind::kRequeueAfter;
using nlohmann::json;
using testing::FakeEvents;
using testing::FakeKfp;
using testing::FakeWorkflowApi;

const std::string kNs = "kubeflow";

std::string annotation(const json& obj, std::string_view key) {
  const json& a = obj["metadata"]["annotations"];
  auto it = a.find(std::string(key));
  return it == a.end() ? "" : it->get<std::string>();
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kfp_.cluster = &api_;
    rebuild();
  }
  // Whatever a test did: KFP never deleted a Workflow, and no reported body
  // carried the label that makes it do so.
  void TearDown() override {
    EXPECT_EQ(kfp_.reportsWithFinalStateLabel, 0);
    EXPECT_TRUE(kfp_.deleted.empty()) << kfp_.deleted.front();
    for (const json& body : kfp_.reported)
      EXPECT_FALSE(body["metadata"]["labels"].contains(std::string(lbl::kPersistedFinalState)));
  }
  void rebuild() {
    reconciler_ = std::make_unique<Reconciler>(api_, &kfp_, events_, clock_, config_, &observer_);
  }
  // A run as the cluster holds it a second after completion: KFP created the
  // run (it knows the id), and its persistence agent reported the run, which
  // made the API server label the Workflow pipeline/persistedFinalState.
  std::string add(KfpRunSpec spec, bool knownToKfp = true) {
    json wf = json::parse(makeKfpRunJson(spec));
    const json& labels = wf["metadata"]["labels"];
    const bool completed = labels.value(std::string(lbl::kCompleted), "") == "true";
    if (labels.contains(std::string(lbl::kRunId))) {
      const std::string runId = labels[std::string(lbl::kRunId)];
      if (knownToKfp)
        kfp_.states[runId] = completed ? "SUCCEEDED" : "RUNNING";
      if (completed)
        wf["metadata"]["labels"][std::string(lbl::kPersistedFinalState)] = "true";
    }
    api_.put(wf.dump());
    return spec.name;
  }
  std::string runId(const std::string& name) {
    return object(name)["metadata"]["labels"][std::string(lbl::kRunId)];
  }
  ReconcileOutcome reconcile(const std::string& name) { return reconciler_->reconcile(kNs, name); }
  json object(const std::string& name) { return api_.object(kNs, name); }

  struct CountingObserver : ReconcileObserver {
    void onVerdict(const Verdict& v) override {
      ++verdicts;
      if (v.misreported)
        ++misreported;
    }
    void onStep(StepKind kind, std::string_view, std::string_view result) override {
      steps.push_back(std::string(stepKindName(kind)) + ":" + std::string(result));
    }
    void onReportVerified(std::optional<std::chrono::duration<double>> latency) override {
      ++verified;
      lastLatency = latency;
    }
    void onKfpEndpointMissing(std::string_view operation) override {
      endpointMissing.push_back(std::string(operation));
    }
    void onKfpRunUnknown() override { ++unknownRuns; }
    void onKfpStateRegressed() override { ++regressions; }
    int regressions = 0;
    std::vector<std::string> endpointMissing;
    int unknownRuns = 0;
    int verdicts = 0, misreported = 0, verified = 0;
    std::optional<std::chrono::duration<double>> lastLatency;
    std::vector<std::string> steps;
  };

  FakeWorkflowApi api_;
  FakeKfp kfp_;
  FakeEvents events_;
  FakeClock clock_;
  CorrectionConfig config_;
  CountingObserver observer_;
  std::unique_ptr<Reconciler> reconciler_;
};

KfpRunSpec masked(std::string name) {
  KfpRunSpec s;
  s.shape = RunShape::kV2Sibling;
  s.name = std::move(name);
  s.bodyFails = true;
  return s;
}

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

// --- KFP safety (issue 15): never make KFP delete a Workflow.

TEST_F(ReconcilerTest, TheReportNeverCarriesTheFinalStateLabelAndKeepsThePatchedVersion) {
  // The agent reported the run a second after completion: the Workflow
  // carries pipeline/persistedFinalState when the controller corrects it.
  const std::string name = add(masked("labelled"));
  ASSERT_TRUE(object(name)["metadata"]["labels"].contains(std::string(lbl::kPersistedFinalState)));
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  ASSERT_EQ(kfp_.reported.size(), 1u);
  const json& body = kfp_.reported[0];
  EXPECT_FALSE(body["metadata"]["labels"].contains(std::string(lbl::kPersistedFinalState)));
  EXPECT_EQ(body["metadata"]["labels"][std::string(lbl::kRunId)], runId(name));
  // Exactly the object the record patch returned (KFP 2.17+ fences on it).
  ASSERT_FALSE(api_.patchedVersions.empty());
  EXPECT_EQ(body["metadata"]["resourceVersion"], api_.patchedVersions[0]);
  EXPECT_EQ(body["status"]["phase"], "Failed");
  // The Workflow survived, KFP labelled it again, and the run is FAILED.
  ASSERT_TRUE(api_.exists(kNs, name));
  EXPECT_EQ(object(name)["metadata"]["labels"][std::string(lbl::kPersistedFinalState)], "true");
  EXPECT_EQ(kfp_.states[runId(name)], "FAILED");
  EXPECT_EQ(object(name)["status"]["phase"], "Failed");
}

TEST_F(ReconcilerTest, AnUnknownRunIsNeverReported) {
  const std::string name = add(masked("unknown"), /*knownToKfp=*/false);
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  EXPECT_EQ(kfp_.attempts, 0);  // KFP would delete the CR of a run it does not know
  json wf = object(name);
  EXPECT_EQ(wf["status"]["phase"], "Failed");  // the Workflow itself is corrected
  EXPECT_NE(annotation(wf, ann::kKfpReportError).find("KFP has no run " + runId(name)),
            std::string::npos);
  EXPECT_NE(annotation(wf, ann::kKfpReportError).find("not reported"), std::string::npos);
  EXPECT_EQ(observer_.unknownRuns, 1);
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_NE(events_.events[0].message.find("KFP has no run"), std::string::npos);
  // Not retried.
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  EXPECT_EQ(kfp_.stateReads, 1);
  EXPECT_EQ(kfp_.attempts, 0);
}

TEST_F(ReconcilerTest, ARunAlreadyFailedInKfpIsNotReportedAgain) {
  const std::string name = add(masked("already-failed"));
  kfp_.states[runId(name)] = "FAILED";
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_EQ(kfp_.attempts, 0);
  EXPECT_FALSE(annotation(object(name), ann::kKfpReportedAt).empty());
  EXPECT_EQ(observer_.verified, 1);
}

Error endpointMissing(std::string_view operation) {
  Error e(ErrorCode::kTransient, std::string(operation) +
                                     ": KFP answered HTTP 404: 404 page not found (no KFP API at "
                                     "this URL: check --kfp-api-url)");
  e.httpStatus = 404;
  return e;
}

TEST_F(ReconcilerTest, AReportEndpoint404IsAConfigurationErrorRetriedNotRecordedOnTheRun) {
  const std::string name = add(masked("bad-url"));
  kfp_.reportErrors = {endpointMissing("report"), endpointMissing("report")};
  for (int i = 0; i < 2; ++i) {
    ReconcileOutcome r = reconcile(name);
    EXPECT_EQ(r.kind, Kind::kRetry);
    ASSERT_TRUE(r.error.has_value());
    EXPECT_TRUE(isKfpEndpointMissing(*r.error));
  }
  json wf = object(name);
  EXPECT_EQ(annotation(wf, ann::kKfpReportError), "");  // not the run's fault
  EXPECT_EQ(annotation(wf, ann::kKfpReportAttempts), "");
  EXPECT_EQ(observer_.endpointMissing, (std::vector<std::string>{"report", "report"}));
  EXPECT_TRUE(events_.events.empty());
  // The URL is fixed: the run is reported once.
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_EQ(kfp_.reported.size(), 1u);
  EXPECT_FALSE(annotation(object(name), ann::kKfpReportedAt).empty());
}

TEST_F(ReconcilerTest, AGetRun404WithoutKfpsStatusIsAlsoAConfigurationError) {
  const std::string name = add(masked("bad-url-get"));
  kfp_.stateErrors = {endpointMissing("get_run")};
  EXPECT_EQ(reconcile(name).kind, Kind::kRetry);
  EXPECT_EQ(annotation(object(name), ann::kKfpReportError), "");
  EXPECT_EQ(observer_.endpointMissing, (std::vector<std::string>{"get_run"}));
  EXPECT_EQ(observer_.unknownRuns, 0);
  EXPECT_EQ(kfp_.attempts, 0);
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_EQ(kfp_.reported.size(), 1u);
}

TEST_F(ReconcilerTest, KfpsNotFoundToAReportIsCheckedWithGetRun) {
  // ReportWorkflowResource answered NotFound (e.g. the CR vanished while KFP
  // labelled it): the run still exists, so it is retried, not marked gone.
  const std::string name = add(masked("report-notfound"));
  kfp_.reportErrors = {Error(ErrorCode::kNotFound, "Failed to add PersistedFinalState label")};
  ReconcileOutcome r = reconcile(name);
  EXPECT_EQ(r.kind, Kind::kRetry);
  EXPECT_EQ(annotation(object(name), ann::kKfpReportError), "");
  EXPECT_EQ(annotation(object(name), ann::kKfpReportAttempts), "1");
  EXPECT_EQ(observer_.unknownRuns, 0);
  EXPECT_EQ(reconcile(name).kind, kAwaitsReverify);
  EXPECT_FALSE(annotation(object(name), ann::kKfpReportedAt).empty());
}

TEST_F(ReconcilerTest, ReportsPerRecordAreBounded) {
  const std::string name = add(masked("never-confirmed"));
  kfp_.stickyState = "SUCCEEDED";  // KFP accepts every report but never shows FAILED
  for (int i = 0; i < 10; ++i)
    reconcile(name);
  EXPECT_EQ(kfp_.attempts, kMaxKfpReports);
  json wf = object(name);
  EXPECT_NE(annotation(wf, ann::kKfpReportError).find("not confirmed FAILED after 3 reports"),
            std::string::npos)
      << annotation(wf, ann::kKfpReportError);
  EXPECT_EQ(events_.events.size(), 1u);
}

TEST_F(ReconcilerTest, HostileAnnotationsNeverDriveAReport) {
  // A healthy run marked as corrected with garbage (issue 16: re-reported to
  // KFP 14 times a minute), and one with a complete forged record.
  KfpRunSpec spec;
  spec.name = "bogus";
  add(spec);
  api_.mutate(kNs, "bogus", [](json& wf) {
    auto& a = wf["metadata"]["annotations"];
    a[std::string(ann::kTruePhase)] = "Bogus";
    a[std::string(ann::kAction)] = "corrected";
    a[std::string(ann::kFailures)] = R"([{"displayName": 5}])";
  });
  spec.name = "forged";
  add(spec);
  api_.mutate(kNs, "forged", [](json& wf) {
    auto& a = wf["metadata"]["annotations"];
    a[std::string(ann::kTruePhase)] = "Failed";
    a[std::string(ann::kReportedPhase)] = "Succeeded";
    a[std::string(ann::kAction)] = "corrected";
    a[std::string(ann::kFailures)] = std::string(600 * 1024, '[');
    wf["status"]["phase"] = "Failed";  // the tenant also sets the phase
  });
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(reconcile("bogus").kind, Kind::kDone);
    EXPECT_EQ(reconcile("forged").kind, Kind::kDone);
  }
  EXPECT_EQ(kfp_.attempts, 0);
  EXPECT_EQ(kfp_.stateReads, 0);
  EXPECT_EQ(api_.appliedPatches, 0);
  EXPECT_TRUE(events_.events.empty());
}

// KFP's RetryRun (GenerateRetryExecution, backend/src/common/util/workflow.go
// at 2.4.0, 2.5.0 and master) rebuilds the Workflow from the manifest of the
// last report: our annotations come back; it drops the completed and
// persistedFinalState labels and runs the failed parts again. `next` is how
// the retried Workflow completes.
void retryLike(FakeWorkflowApi& api, const json& lastReport, const KfpRunSpec& next) {
  json wf = json::parse(makeKfpRunJson(next));
  wf["metadata"]["annotations"].update(lastReport["metadata"]["annotations"]);
  wf["metadata"]["annotations"]["pipelines.kubeflow.org/retry-generation"] = "1";
  api.put(wf.dump());
}

TEST_F(ReconcilerTest, AKfpRetryThatTrulySucceedsStaysSucceededAndIsNotReportedAgain) {
  KfpRunSpec spec = masked("retry-ok");
  add(spec);
  ASSERT_EQ(reconcile(spec.name).kind, kAwaitsReverify);
  ASSERT_EQ(kfp_.reported.size(), 1u);
  const int patches = api_.appliedPatches;

  KfpRunSpec healthy = spec;
  healthy.bodyFails = false;
  retryLike(api_, kfp_.reported[0], healthy);
  kfp_.states[runId(spec.name)] = "SUCCEEDED";  // the agent reported the retry's success
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  EXPECT_EQ(object(spec.name)["status"]["phase"], "Succeeded");
  EXPECT_EQ(kfp_.reported.size(), 1u);
  EXPECT_EQ(kfp_.states[runId(spec.name)], "SUCCEEDED");
  EXPECT_EQ(api_.appliedPatches, patches);
  EXPECT_EQ(events_.events.size(), 1u);
}

TEST_F(ReconcilerTest, AKfpRetryThatMasksAFailureAgainIsCorrectedAgain) {
  KfpRunSpec spec = masked("retry-masked");
  add(spec);
  ASSERT_EQ(reconcile(spec.name).kind, kAwaitsReverify);
  ASSERT_EQ(kfp_.reported.size(), 1u);

  retryLike(api_, kfp_.reported[0], spec);  // the retry fails again, masked again
  kfp_.states[runId(spec.name)] = "SUCCEEDED";
  EXPECT_EQ(reconcile(spec.name).kind, kAwaitsReverify);
  EXPECT_EQ(object(spec.name)["status"]["phase"], "Failed");
  ASSERT_EQ(kfp_.reported.size(), 2u);
  EXPECT_EQ(kfp_.reported[1]["status"]["phase"], "Failed");
  EXPECT_EQ(kfp_.states[runId(spec.name)], "FAILED");
  EXPECT_EQ(events_.events.size(), 2u);
  EXPECT_EQ(reconcile(spec.name).kind, kAwaitsReverify);
  EXPECT_EQ(kfp_.reported.size(), 2u);
}

// --- Re-verification (KFP 2.0-2.16 accept a late report of an older state) --

constexpr auto kReverifyMs =
    std::chrono::duration_cast<std::chrono::milliseconds>(kKfpReverifyDelay);

TEST_F(ReconcilerTest, AVerifiedRunIsReadAgainAfterTheDelayAndNotReportedAgainWhenStillFailed) {
  KfpRunSpec spec = masked("reverify-ok");
  add(spec);
  ReconcileOutcome r = reconcile(spec.name);
  // Verified: the key comes back after the delay, nothing read before then.
  ASSERT_EQ(r.kind, Kind::kRequeueAfter) << r.detail;
  EXPECT_EQ(r.after, kReverifyMs);
  EXPECT_EQ(r.detail, kAwaitingKfpReverify);
  const int reads = kfp_.stateReads;
  clock_.advance(kKfpReverifyDelay - std::chrono::seconds(1));
  r = reconcile(spec.name);
  EXPECT_EQ(r.kind, Kind::kRequeueAfter);
  EXPECT_EQ(r.after, std::chrono::milliseconds(1000));
  EXPECT_EQ(kfp_.stateReads, reads);
  EXPECT_EQ(annotation(object(spec.name), ann::kKfpReverifiedAt), "");

  clock_.advance(std::chrono::seconds(1));
  r = reconcile(spec.name);
  EXPECT_EQ(r.kind, Kind::kDone) << r.detail;
  EXPECT_EQ(kfp_.stateReads, reads + 1);
  json wf = object(spec.name);
  EXPECT_EQ(annotation(wf, ann::kKfpReverifiedAt), formatRfc3339(clock_.wallNow()));
  EXPECT_EQ(annotation(wf, ann::kKfpReportAttempts), "");
  EXPECT_EQ(kfp_.attempts, 1);
  EXPECT_EQ(observer_.regressions, 0);
  EXPECT_EQ(observer_.steps.back(), "kfp-reverify:success");

  // Once: later passes read nothing more.
  clock_.advance(std::chrono::hours(1));
  const int patches = api_.appliedPatches;
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  EXPECT_EQ(kfp_.stateReads, reads + 1);
  EXPECT_EQ(api_.appliedPatches, patches);
}

TEST_F(ReconcilerTest, ARunWhoseKfpStateWentBackFromFailedIsReportedAgain) {
  KfpRunSpec spec = masked("reverify-regressed");
  add(spec);
  ASSERT_EQ(reconcile(spec.name).kind, Kind::kRequeueAfter);
  ASSERT_EQ(kfp_.attempts, 1);
  // A report of the Running Workflow, held up somewhere, lands after ours.
  kfp_.states[runId(spec.name)] = "RUNNING";
  clock_.advance(kKfpReverifyDelay);
  ReconcileOutcome r = reconcile(spec.name);
  // Reported again in the same pass, verified, and that verification is
  // re-checked in turn.
  EXPECT_EQ(r.kind, Kind::kRequeueAfter) << r.detail;
  EXPECT_EQ(r.after, kReverifyMs);
  EXPECT_EQ(kfp_.attempts, 2);
  ASSERT_EQ(kfp_.reported.size(), 2u);
  EXPECT_EQ(kfp_.reported[1]["status"]["phase"], "Failed");
  EXPECT_EQ(kfp_.states[runId(spec.name)], "FAILED");
  EXPECT_EQ(observer_.regressions, 1);
  json wf = object(spec.name);
  EXPECT_EQ(annotation(wf, ann::kKfpReportAttempts), "1");  // the undone report counts
  EXPECT_EQ(annotation(wf, ann::kKfpReportedAt), formatRfc3339(clock_.wallNow()));
  EXPECT_EQ(annotation(wf, ann::kKfpReverifiedAt), "");
  EXPECT_EQ(events_.events.size(), 1u);  // announced once

  clock_.advance(kKfpReverifyDelay);
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  EXPECT_FALSE(annotation(object(spec.name), ann::kKfpReverifiedAt).empty());
  EXPECT_EQ(kfp_.attempts, 2);
  EXPECT_EQ(observer_.regressions, 1);
}

TEST_F(ReconcilerTest, RegressionsSpendTheReportCapAndThenStop) {
  KfpRunSpec spec = masked("reverify-cap");
  add(spec);
  ASSERT_EQ(reconcile(spec.name).kind, Kind::kRequeueAfter);
  for (int i = 0; i < 6; ++i) {
    kfp_.states[runId(spec.name)] = "RUNNING";  // a stale report wins every time
    clock_.advance(kKfpReverifyDelay);
    reconcile(spec.name);
  }
  EXPECT_EQ(kfp_.attempts, kMaxKfpReports);
  EXPECT_EQ(observer_.regressions, kMaxKfpReports);
  json wf = object(spec.name);
  EXPECT_NE(annotation(wf, ann::kKfpReportError).find("went back from FAILED to RUNNING"),
            std::string::npos)
      << annotation(wf, ann::kKfpReportError);
  EXPECT_EQ(annotation(wf, ann::kKfpReportAttempts), "3");
  EXPECT_EQ(annotation(wf, ann::kKfpReportedAt), "");
  const int reads = kfp_.stateReads;
  clock_.advance(std::chrono::hours(1));
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  EXPECT_EQ(kfp_.stateReads, reads);
}

TEST_F(ReconcilerTest, AReportThatNeededRetriesLeavesFewerRegressionsToTheCap) {
  KfpRunSpec spec = masked("reverify-after-retry");
  add(spec);
  kfp_.stickyState = "SUCCEEDED";  // the first report is accepted, not confirmed
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kRetry);
  kfp_.stickyState.reset();
  ASSERT_EQ(reconcile(spec.name).kind, Kind::kRequeueAfter);
  ASSERT_EQ(kfp_.attempts, 2);
  kfp_.states[runId(spec.name)] = "RUNNING";
  clock_.advance(kKfpReverifyDelay);
  reconcile(spec.name);
  kfp_.states[runId(spec.name)] = "RUNNING";
  clock_.advance(kKfpReverifyDelay);
  reconcile(spec.name);
  EXPECT_EQ(kfp_.attempts, kMaxKfpReports);  // 3 accepted reports in all
  EXPECT_FALSE(annotation(object(spec.name), ann::kKfpReportError).empty());
}

TEST_F(ReconcilerTest, PersistenceAgentModeMakesTheAgentReportARegressedRunAgain) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  rebuild();
  KfpRunSpec spec = masked("agent-regressed");
  add(spec);
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);  // awaiting the agent
  api_.mutate(kNs, spec.name,
              [](json& w) { w["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
  kfp_.states[runId(spec.name)] = "FAILED";
  ASSERT_EQ(reconcile(spec.name).kind, Kind::kRequeueAfter);
  kfp_.states[runId(spec.name)] = "RUNNING";
  clock_.advance(kKfpReverifyDelay);
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);  // awaiting the agent again
  json wf = object(spec.name);
  EXPECT_FALSE(wf["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  EXPECT_EQ(annotation(wf, ann::kKfpReportedAt), "");
  EXPECT_EQ(annotation(wf, ann::kKfpReportAttempts), "1");
  EXPECT_EQ(kfp_.attempts, 0);  // never POSTed in this mode
  EXPECT_EQ(observer_.regressions, 1);
}

TEST_F(ReconcilerTest, HealthyAndUncorrectedRunsAreNeverReverified) {
  KfpRunSpec healthy;
  healthy.name = "healthy-reverify";
  add(healthy);
  // A tenant forged a verified correction on it: the record does not describe
  // the run, so none of it drives a KFP read.
  api_.mutate(kNs, healthy.name, [](json& w) {
    json& a = w["metadata"]["annotations"];
    a[std::string(ann::kAction)] = "corrected";
    a[std::string(ann::kTruePhase)] = "Failed";
    a[std::string(ann::kReportedPhase)] = "Succeeded";
    a[std::string(ann::kEventEmittedAt)] = "2026-01-01T00:00:00Z";
    a[std::string(ann::kKfpReportedAt)] = "2026-01-01T00:00:00Z";
  });
  config_.correct = false;
  rebuild();
  const std::string observed = add(masked("observed-reverify"));
  EXPECT_EQ(reconcile(healthy.name).kind, Kind::kDone);
  EXPECT_EQ(reconcile(observed).kind, Kind::kDone);
  const int patches = api_.appliedPatches;
  clock_.advance(kKfpReverifyDelay * 2);
  EXPECT_EQ(reconcile(healthy.name).kind, Kind::kDone);
  EXPECT_EQ(reconcile(observed).kind, Kind::kDone);
  EXPECT_EQ(kfp_.stateReads, 0);
  EXPECT_EQ(api_.appliedPatches, patches);
}

TEST_F(ReconcilerTest, AForgedOrUnreadableReportTimeIsReverifiedOnceAtOnce) {
  int n = 0;
  for (const std::string forged :
       {"2100-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "yesterday", "2026-13-45T99:99:99Z"}) {
    KfpRunSpec spec = masked("forged-" + std::to_string(++n));
    add(spec);
    ASSERT_EQ(reconcile(spec.name).kind, Kind::kRequeueAfter);
    api_.mutate(kNs, spec.name, [&](json& w) {
      w["metadata"]["annotations"][std::string(ann::kKfpReportedAt)] = forged;
    });
    const int reads = kfp_.stateReads;
    EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone) << forged;
    EXPECT_EQ(kfp_.stateReads, reads + 1) << forged;
    EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone) << forged;
    EXPECT_EQ(kfp_.stateReads, reads + 1) << forged;
  }
}

TEST_F(ReconcilerTest, ReverificationOfARunKfpNoLongerHasEndsWithoutAReport) {
  KfpRunSpec spec = masked("reverify-gone");
  add(spec);
  ASSERT_EQ(reconcile(spec.name).kind, Kind::kRequeueAfter);
  kfp_.states.erase(runId(spec.name));  // the run was deleted in KFP
  clock_.advance(kKfpReverifyDelay);
  EXPECT_EQ(reconcile(spec.name).kind, Kind::kDone);
  EXPECT_FALSE(annotation(object(spec.name), ann::kKfpReverifiedAt).empty());
  EXPECT_EQ(kfp_.attempts, 1);
  EXPECT_EQ(observer_.regressions, 0);
  // A transient failure is retried through the queue.
  KfpRunSpec other = masked("reverify-transient");
  add(other);
  ASSERT_EQ(reconcile(other.name).kind, Kind::kRequeueAfter);
  clock_.advance(kKfpReverifyDelay);
  kfp_.stateErrors.push_back(Error(ErrorCode::kTransient, "503"));
  EXPECT_EQ(reconcile(other.name).kind, Kind::kRetry);
  EXPECT_EQ(annotation(object(other.name), ann::kKfpReverifiedAt), "");
  EXPECT_EQ(reconcile(other.name).kind, Kind::kDone);
}

TEST_F(ReconcilerTest, WithoutAKfpClientNothingIsReverified) {
  config_.kfpReport = KfpReportMode::kPersistenceAgent;
  reconciler_ = std::make_unique<Reconciler>(api_, nullptr, events_, clock_, config_, &observer_);
  const std::string name = add(masked("agent-no-client"));
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  api_.mutate(kNs, name,
              [](json& w) { w["metadata"]["labels"]["pipeline/persistedFinalState"] = "true"; });
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);  // confirmed by the label, no requeue
  EXPECT_FALSE(annotation(object(name), ann::kKfpReportedAt).empty());
  clock_.advance(kKfpReverifyDelay);
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  EXPECT_EQ(annotation(object(name), ann::kKfpReverifiedAt), "");
}

// The controller's workers skip keys whose cached record needs no work: a run
// awaiting its re-verification must count as work, or the delayed requeue is
// dropped and the run is re-verified only if something else touches it (the
// chaos soak found exactly that: only failovers re-verified).
TEST_F(ReconcilerTest, ARunAwaitingItsReverificationIsWorkForTheController) {
  const std::string name = add(masked("reverify-record"));
  ASSERT_EQ(reconcile(name).kind, Kind::kRequeueAfter);
  WorkflowRecord r = projectWorkflow(object(name).dump(), config_, clock_.wallNow());
  EXPECT_EQ(r.why, kAwaitingKfpReverify);
  EXPECT_TRUE(r.needsWork());
  clock_.advance(kKfpReverifyDelay);
  EXPECT_TRUE(projectWorkflow(object(name).dump(), config_, clock_.wallNow()).needsWork());
  CorrectionConfig noClient = config_;
  noClient.kfpReverify = false;
  EXPECT_FALSE(projectWorkflow(object(name).dump(), noClient, clock_.wallNow()).needsWork());
  EXPECT_EQ(reconcile(name).kind, Kind::kDone);
  EXPECT_FALSE(projectWorkflow(object(name).dump(), config_, clock_.wallNow()).needsWork());
}

}  // namespace
}  // namespace exitrec
