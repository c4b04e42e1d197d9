// KFP's persistence agent emulation against the Kubernetes API simulator and
// the KFP API simulator, with a FakeClock for the agent's and KFP's time.

#include "sim/kfp/persistence_agent_sim.h"

#include <gtest/gtest.h>

#include "test/sim/kfp_sim_fixture.h"

namespace exitrec::kfpsimtest {
namespace {

class PersistenceAgentSimTest : public ::testing::Test, public KfpSimCluster {
 protected:
  void SetUp() override { setUp(KfpVersion::k2_4To2_16); }
  void TearDown() override {
    if (agent_)
      agent_->stop();
    tearDown();
  }

  void startAgent() {
    PersistenceAgentSim::Options o;
    o.kubeApiUrl = kube_->baseUrl();
    o.clock = &clock_;
    agent_ = std::make_unique<PersistenceAgentSim>(
        o, [this](const std::string& wf) { return kfp_->reportFromAgent(wf); });
    ASSERT_TRUE(agent_->start().ok());
    ASSERT_TRUE(waitFor([&] { return agent_->hasSynced(); }));
  }

  // Steps the fake clock one second at a time until `pred` holds (the agent's
  // queue delays are 1 s and more, its resync 30 s).
  bool stepUntil(const std::function<bool()>& pred, int maxSeconds = 120) {
    for (int i = 0; i < maxSeconds; ++i) {
      if (waitFor(pred, 30ms))
        return true;
      clock_.advance(1s);
      // Every component whose deadline passed has woken up and moved on.
      waitFor([&] { return clock_.dueWaiters() == 0; }, 1s);
    }
    return pred();
  }

  // A Workflow that finished at the fake clock's now.
  json finishedNow(const std::string& name, const std::string& phase) {
    json wf = kfpWorkflow(name, phase);
    wf["status"]["finishedAt"] = formatRfc3339(clock_.wallNow());
    return wf;
  }

  std::size_t agentReports(const std::string& runId) {
    std::size_t n = 0;
    for (const auto& r : kfp_->reports())
      n += r.source == "agent" && r.runId == runId;
    return n;
  }

  std::unique_ptr<PersistenceAgentSim> agent_;
};

TEST_F(PersistenceAgentSimTest, ReportsACompletedRunOnceThenSkipsItWhileLabelled) {
  createRun(finishedNow("done", "Failed"));
  startAgent();
  ASSERT_TRUE(stepUntil([&] { return labelled("done"); })) << agent_->stats().reports;
  EXPECT_EQ(runState("run-done"), "FAILED");
  // The label's MODIFIED event and the 30 s resyncs bring it back: skipped.
  ASSERT_TRUE(stepUntil([&] { return agent_->stats().skippedPersisted >= 3; }))
      << agent_->stats().saves;
  EXPECT_EQ(agentReports("run-done"), 1u);
  EXPECT_EQ(kfp_->acceptedReportsFor("run-done", "FAILED"), 1u);
  EXPECT_TRUE(exists("done"));
  EXPECT_TRUE(kfp_->deletions().empty());
}

TEST_F(PersistenceAgentSimTest, AfterTheTtlItsReportMakesKfpDeleteTheWorkflow) {
  createRun(finishedNow("old", "Succeeded"));
  startAgent();
  ASSERT_TRUE(stepUntil([&] { return labelled("old"); }));
  ASSERT_TRUE(stepUntil([&] { return agent_->stats().skippedPersisted >= 1; }));
  ASSERT_TRUE(exists("old"));
  // KFP's manifests set TTL_SECONDS_AFTER_WORKFLOW_FINISH=86400: a day later
  // the agent's resync reports the Workflow again, label and all.
  clock_.advance(std::chrono::seconds(86400));
  // The next resync reports the labelled Workflow, and KFP deletes it.
  // (The report is logged once KFP answers it, after the delete.)
  ASSERT_TRUE(stepUntil([&] { return gone("old") && agentReports("run-old") == 2; }, 40));
  const auto reports = kfp_->reports();
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().source, "agent");
  EXPECT_TRUE(reports.back().carriedFinalStateLabel) << KfpApiSimulator::reportsToJson(reports);
  ASSERT_EQ(kfp_->deletions().size(), 1u);
  EXPECT_EQ(kfp_->deletions()[0].reason, "persisted-final-state");
}

TEST_F(PersistenceAgentSimTest, SkipsUnlabelledRunsAndRetriesTransientFailures) {
  json argo = kfpWorkflow("plain-argo", "Succeeded");
  argo["metadata"]["labels"].erase("pipeline/runid");
  seed(argo);
  createRun(finishedNow("during-outage", "Failed"));
  kfp_->setOutage(true);
  startAgent();
  ASSERT_TRUE(stepUntil([&] { return agent_->stats().transientFailures >= 2; }));
  EXPECT_FALSE(labelled("during-outage"));
  EXPECT_GE(agent_->stats().skippedNoRunId, 1u);
  kfp_->setOutage(false);
  ASSERT_TRUE(stepUntil([&] { return labelled("during-outage"); }, 400));
  EXPECT_EQ(runState("run-during-outage"), "FAILED");
  EXPECT_FALSE(labelled("plain-argo"));
  EXPECT_TRUE(exists("plain-argo"));
}

}  // namespace
}  // namespace exitrec::kfpsimtest
