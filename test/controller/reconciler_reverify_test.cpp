// The Reconciler's re-verification: KFP 2.0-2.16 accept a late report of an
// older state, so a verified correction is read again after a delay and
// reported again (within the report cap) when KFP went back.

#include "test/controller/reconciler_fixture.h"

namespace exitrec::reconciler_test {
namespace {

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
}  // namespace exitrec::reconciler_test
