// The KFP API simulator's ReportWorkflowResource per KFP version, against the
// Kubernetes API simulator (KFP's workflow client).

#include "sim/kfp/kfp_api_simulator.h"

#include <gtest/gtest.h>

#include "test/sim/kfp_sim_fixture.h"

namespace exitrec::kfpsimtest {
namespace {

class KfpReportTest : public ::testing::TestWithParam<KfpVersion>, public KfpSimCluster {
 protected:
  void SetUp() override { setUp(GetParam()); }
  void TearDown() override { tearDown(); }
  bool atLeast217() const { return GetParam() >= KfpVersion::k2_17; }
};

std::string versionName(const ::testing::TestParamInfo<KfpVersion>& info) {
  std::string n(kfpVersionName(info.param));
  for (char& c : n)
    c = (c == '.' || c == '-') ? '_' : c;
  return n;
}

// The regression the controller must never commit: a report that still
// carries pipeline/persistedFinalState makes every KFP version delete the CR.
TEST_P(KfpReportTest, AReportCarryingTheFinalStateLabelDeletesTheWorkflow) {
  json wf = createRun(kfpWorkflow("labelled", "Failed"));
  wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true";
  const auto r = report(wf);
  EXPECT_EQ(r.status, 404) << r.body;  // the label patch finds no CR afterwards
  EXPECT_TRUE(gone("labelled"));
  EXPECT_EQ(mutations("delete", "labelled"), 1);
  ASSERT_EQ(kfp_->deletions().size(), 1u);
  EXPECT_EQ(kfp_->deletions()[0].reason, "persisted-final-state");
  EXPECT_EQ(runState("run-labelled"), "FAILED");  // the row is written after the delete
  // The value does not matter, only the label's presence.
  json other = createRun(kfpWorkflow("labelled-false", "Succeeded"));
  other["metadata"]["labels"]["pipeline/persistedFinalState"] = "false";
  EXPECT_EQ(report(other).status, 404);
  EXPECT_TRUE(gone("labelled-false"));
}

TEST_P(KfpReportTest, ALabelledReportForAGoneWorkflowWritesNothing) {
  json wf = createRun(kfpWorkflow("gone", "Failed"));
  wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true";
  ASSERT_TRUE(client_->remove(resources::kWorkflows, kNs, "gone").ok());
  const auto r = report(wf);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("Failed to delete the completed workflow for run run-gone"),
            std::string::npos)
      << r.body;
  auto run = kfp_->run("run-gone");
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->state, "PENDING");  // NotFound returns before UpdateRun
  EXPECT_EQ(run->stateHistory.size(), 1u);
  EXPECT_EQ(mutations("patch", "gone"), 0);
}

TEST_P(KfpReportTest, AnUnknownRunIsDeletedAndAnsweredNotFound) {
  json wf = seed(kfpWorkflow("stranger", "Succeeded"));
  const auto r = report(wf);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_TRUE(gone("stranger"));
  ASSERT_EQ(kfp_->deletions().size(), 1u);
  EXPECT_EQ(kfp_->deletions()[0].reason, "unknown-run");
  EXPECT_FALSE(kfp_->run("run-stranger").has_value());  // never created by a report
}

TEST_P(KfpReportTest, From217AYoungUnknownWorkflowGetsAGracePeriod) {
  json young = kfpWorkflow("young", "Succeeded");
  young["metadata"]["creationTimestamp"] = formatRfc3339(clock_.wallNow() - 10s);
  json wf = seed(young);
  auto r = report(wf);
  if (!atLeast217()) {
    EXPECT_EQ(r.status, 404) << r.body;  // 2.0–2.16: no grace period
    EXPECT_TRUE(gone("young"));
    return;
  }
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("grace period"), std::string::npos) << r.body;
  EXPECT_TRUE(exists("young"));
  clock_.advance(111s);  // 121 s old: past WORKFLOW_GC_GRACE_PERIOD_SECONDS (120)
  r = report(wf);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_TRUE(gone("young"));
}

TEST_P(KfpReportTest, AScheduledWorkflowsRunIsCreatedFromItsReport) {
  json wf = kfpWorkflow("scheduled", "Succeeded");
  wf["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "kubeflow.org/v1beta1"},
                                                    {"kind", "ScheduledWorkflow"},
                                                    {"name", "nightly"},
                                                    {"uid", "job-1"}}});
  wf = seed(wf);
  auto r = report(wf);
  EXPECT_EQ(r.status, 404) << r.body;  // the recurring run is unknown: its GetJob fails
  EXPECT_TRUE(exists("scheduled"));    // ... and the CR stays: only one-off runs are GCed
  kfp_->addRecurringRun("job-1", kNs);
  r = report(wf);
  EXPECT_EQ(r.status, 200) << r.body;
  auto run = kfp_->run("run-scheduled");
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->state, "SUCCEEDED");
  EXPECT_EQ(run->recurringRunId, "job-1");
  EXPECT_TRUE(labelled("scheduled"));
}

TEST_P(KfpReportTest, ATerminalReportLabelsTheWorkflowTheWayTheVersionDoes) {
  json wf = createRun(kfpWorkflow("finishing", "Running"));
  ASSERT_EQ(report(wf).status, 200);
  EXPECT_EQ(runState("run-finishing"), "RUNNING");
  EXPECT_FALSE(labelled("finishing"));
  EXPECT_EQ(mutations("patch", "finishing"), 0);

  json done = kfpWorkflow("finishing", "Succeeded");
  done["metadata"]["resourceVersion"] = wf["metadata"]["resourceVersion"];
  auto updated = client_->update(resources::kWorkflows, kNs, "finishing", done);
  ASSERT_TRUE(updated.ok());
  const auto r = report(*updated);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(labelled("finishing"));
  EXPECT_EQ(live("finishing")["metadata"]["labels"]["pipeline/persistedFinalState"], "true");
  auto run = kfp_->run("run-finishing");
  ASSERT_TRUE(run.has_value());
  std::vector<std::string> states;
  for (const auto& h : run->stateHistory)
    states.push_back(h.second);
  EXPECT_EQ(states, (std::vector<std::string>{"PENDING", "RUNNING", "SUCCEEDED"}));
  EXPECT_EQ(run->finishedAt, "2026-11-28T10:05:00Z");
  const auto log = kube_->mutationLog();
  ASSERT_FALSE(log.empty());
  const auto& patch = log.back();
  ASSERT_EQ(patch.verb, "patch");
  if (atLeast217()) {
    // addWorkflowLabelIfWorkflowUnchanged: a JSON patch fenced by a `test`.
    EXPECT_EQ(patch.contentType, "application/json-patch+json");
    EXPECT_NE(patch.body.find("\"test\""), std::string::npos) << patch.body;
    EXPECT_NE(patch.body.find(updated->at("metadata").at("resourceVersion").get<std::string>()),
              std::string::npos);
  } else {
    EXPECT_EQ(patch.contentType, "application/merge-patch+json");  // addWorkflowLabel
  }
}

TEST_P(KfpReportTest, From217TerminalReportsAreFencedOnTheResourceVersion) {
  json stale = createRun(kfpWorkflow("fenced", "Succeeded"));
  // Someone (e.g. the controller's record patch) changes the CR after the read.
  ASSERT_TRUE(client_
                  ->mergePatch(resources::kWorkflows, kNs, "fenced",
                               {{"metadata", {{"annotations", {{"touched", "yes"}}}}}})
                  .ok());
  const auto r = report(stale);
  if (atLeast217()) {
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_NE(r.body.find("resource version changed"), std::string::npos) << r.body;
    EXPECT_EQ(runState("run-fenced"), "PENDING");
    EXPECT_FALSE(labelled("fenced"));
  } else {
    EXPECT_EQ(r.status, 200) << r.body;  // 2.0–2.16 have no fence
    EXPECT_EQ(runState("run-fenced"), "SUCCEEDED");
    EXPECT_TRUE(labelled("fenced"));
  }
  // A report of the current version passes everywhere (without the label
  // 2.0–2.16 have just added, which would delete the CR).
  json current = live("fenced");
  current["metadata"]["labels"].erase("pipeline/persistedFinalState");
  EXPECT_EQ(report(current).status, 200);
  EXPECT_EQ(runState("run-fenced"), "SUCCEEDED");
}

TEST_P(KfpReportTest, ErrorBodiesHaveTheGatewayShapeOfTheVersion) {
  json wf = createRun(kfpWorkflow("shaped", "Failed"));
  wf["metadata"]["labels"].erase("pipeline/runid");
  const auto r = report(wf);
  ASSERT_EQ(r.status, 400) << r.body;
  json body = json::parse(r.body);
  const bool v1 = GetParam() == KfpVersion::k2_0To2_3;
  EXPECT_EQ(body.contains("error"), v1) << r.body;  // grpc-gateway v1.16 only
  EXPECT_EQ(body["code"], 3);
  EXPECT_NE(body["message"].get<std::string>().find("missing the Run ID label"), std::string::npos);
  if (v1) {
    EXPECT_EQ(body["error"], body["message"]);
  }
  ASSERT_EQ(body["details"].size(), 1u);
  EXPECT_EQ(body["details"][0]["@type"], "type.googleapis.com/google.rpc.Status");
  EXPECT_EQ(body["details"][0]["code"], 3);

  const auto notFound = kfp_->handle("POST", "/apis/v1beta1/nothing-here", std::nullopt, "{}");
  EXPECT_EQ(notFound.status, 404);
  if (v1) {
    EXPECT_EQ(notFound.body, "Not Found\n");
  } else {
    EXPECT_EQ(json::parse(notFound.body), json({{"code", 5}, {"message", "Not Found"}}));
  }
  const auto outside = kfp_->handle("POST", "/pipeline/apis/v1beta1/workflows", std::nullopt, "{}");
  EXPECT_EQ(outside.status, 404);
  EXPECT_EQ(outside.body, "404 page not found\n");
}

INSTANTIATE_TEST_SUITE_P(Versions, KfpReportTest,
                         ::testing::Values(KfpVersion::k2_0To2_3, KfpVersion::k2_4To2_16,
                                           KfpVersion::k2_17, KfpVersion::kMaster),
                         versionName);

class KfpRetryFenceTest : public ::testing::Test, public KfpSimCluster {
 protected:
  void TearDown() override { tearDown(); }
};

// master: a stale pre-retry snapshot (even one carrying the label) neither
// overwrites the retried run nor deletes the resubmitted Workflow.
TEST_F(KfpRetryFenceTest, MasterFencesStalePreRetryReportsOnTheRetryGeneration) {
  setUp(KfpVersion::kMaster);
  json wf = createRun(kfpWorkflow("retried", "Failed"));
  ASSERT_EQ(report(wf).status, 200);
  json stale = live("retried");
  ASSERT_TRUE(stale["metadata"]["labels"].contains("pipeline/persistedFinalState"));

  ASSERT_TRUE(kfp_->retryRun("run-retried").ok());
  json resubmitted = live("retried");
  EXPECT_EQ(resubmitted["status"]["phase"], "Running");
  EXPECT_EQ(resubmitted["metadata"]["annotations"]["pipelines.kubeflow.org/retry-generation"], "1");
  EXPECT_FALSE(resubmitted["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  EXPECT_EQ(runState("run-retried"), "RUNNING");

  // The resourceVersion fence comes first: 503.
  auto r = report(stale);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_TRUE(exists("retried"));
  // Without a resourceVersion it passes that fence vacuously; within the
  // claim's grace (600 s) the generation fence skips it as a success.
  json unversioned = stale;
  unversioned["metadata"].erase("resourceVersion");
  r = report(unversioned);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(exists("retried"));
  EXPECT_EQ(runState("run-retried"), "RUNNING");
  // Later: the live Workflow still carries the claimed generation: skipped.
  clock_.advance(601s);
  r = report(unversioned);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(exists("retried"));
  EXPECT_EQ(runState("run-retried"), "RUNNING");
  EXPECT_TRUE(kfp_->deletions().empty());

  // The retried Workflow's own terminal report is accepted.
  json succeeded = live("retried");
  succeeded["status"]["phase"] = "Succeeded";
  succeeded["status"]["finishedAt"] = "2026-11-28T11:00:00Z";
  auto up = client_->update(resources::kWorkflows, kNs, "retried", succeeded);
  ASSERT_TRUE(up.ok());
  r = report(*up);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(runState("run-retried"), "SUCCEEDED");
}

TEST_F(KfpRetryFenceTest, Before_MasterAStaleLabelledReportDeletesTheRetriedWorkflow) {
  setUp(KfpVersion::k2_17);
  json wf = createRun(kfpWorkflow("retried", "Failed"));
  ASSERT_EQ(report(wf).status, 200);
  json stale = live("retried");
  ASSERT_TRUE(kfp_->retryRun("run-retried").ok());
  EXPECT_FALSE(live("retried")["metadata"].contains("annotations") &&
               live("retried")["metadata"]["annotations"].contains(
                   "pipelines.kubeflow.org/retry-generation"));
  EXPECT_EQ(report(stale).status, 404);
  EXPECT_TRUE(gone("retried"));
}

TEST_F(KfpRetryFenceTest, RetryNeedsAFailedManifest) {
  setUp(KfpVersion::k2_4To2_16);
  json wf = createRun(kfpWorkflow("fine", "Succeeded"));
  ASSERT_EQ(report(wf).status, 200);
  Status s = kfp_->retryRun("run-fine");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("Failed/Error"), std::string::npos);
  EXPECT_EQ(kfp_->retryRun("no-such-run").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace exitrec::kfpsimtest
