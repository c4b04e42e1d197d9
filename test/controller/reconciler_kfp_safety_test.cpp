// The Reconciler and KFP safety (issue 15): never make KFP delete a
// Workflow, never report a run KFP does not know, a misconfigured endpoint
// is not a run's fault, reports are bounded, hostile annotations never drive
// a report, and KFP's own retries.

#include "test/controller/reconciler_fixture.h"

namespace exitrec::reconciler_test {
namespace {

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

}  // namespace
}  // namespace exitrec::reconciler_test
