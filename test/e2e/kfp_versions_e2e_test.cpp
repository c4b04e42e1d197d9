// End to end against the KFP simulator in each KFP version mode, with KFP's
// persistence-agent emulation where KFP would have one (issue 15 item 7).
// Every test asserts that no Workflow was deleted and that each mis-reported
// run ends FAILED in KFP with exactly one accepted FAILED report.

#include "test/e2e/e2e_env.h"

namespace exitrec::e2e {
namespace {

class KfpVersionE2e : public E2eEnv, public ::testing::WithParamInterface<KfpVersion> {
 protected:
  KfpVersion kfpVersion() const override { return GetParam(); }

  // A run that finished a moment ago (KFP's agent measures its TTL from
  // status.finishedAt; the factory's default dates lie weeks back).
  static KfpRunSpec recent(KfpRunSpec s) {
    const auto now = std::chrono::system_clock::now();
    s.startedAt = formatRfc3339(now - 5min);
    s.finishedAt = formatRfc3339(now - 1s);
    return s;
  }
  static KfpRunSpec recentMasked(const std::string& name) { return recent(masked(name)); }

  // Exactly once, and nothing deleted.
  void expectFailedOnce(const std::string& name) {
    const std::string runId = "run-" + name;
    EXPECT_EQ(kfpState(runId), "FAILED") << name;
    EXPECT_EQ(kfp_->acceptedReportsFor(runId, "FAILED"), 1u)
        << name << "\n"
        << KfpApiSimulator::reportsToJson(kfp_->reports());
  }
  void expectNothingDeleted() {
    EXPECT_EQ(workflowDeletes(), 0);
    for (const auto& d : kfp_->deletions())
      ADD_FAILURE() << "KFP deleted " << d.ns << "/" << d.name << " (" << d.reason << ")";
  }
};

std::string versionName(const ::testing::TestParamInfo<KfpVersion>& info) {
  std::string n(kfpVersionName(info.param));
  for (char& c : n)
    c = (c == '.' || c == '-') ? '_' : c;
  return n;
}

// The common case in a real cluster: the agent reported the runs and KFP
// labelled them pipeline/persistedFinalState before the controller looks.
TEST_P(KfpVersionE2e, RunsAlreadyLabelledWhenTheControllerStarts) {
  create(recentMasked("labelled-a"));
  create(recentMasked("labelled-b"));
  KfpRunSpec healthy = recent(masked("healthy"));
  healthy.bodyFails = false;
  create(healthy);
  startAgent();
  ASSERT_TRUE(waitFor(
      [&] { return labelled("labelled-a") && labelled("labelled-b") && labelled("healthy"); },
      20s));
  EXPECT_EQ(kfpState("run-labelled-a"), "SUCCEEDED");  // as Argo reported it, wrongly

  ControllerProcess& ctl = startController({"--leader-elect=false"});
  ASSERT_TRUE(waitFor(
      [&] {
        return workflowDeletes() > 0 ||
               (kfpState("run-labelled-a") == "FAILED" && kfpState("run-labelled-b") == "FAILED" &&
                corrected("labelled-a") && corrected("labelled-b"));
      },
      30s))
      << ctl.log();
  ASSERT_TRUE(agentRounds(3, 3));
  expectNothingDeleted();
  expectFailedOnce("labelled-a");
  expectFailedOnce("labelled-b");
  EXPECT_EQ(kfpState("run-healthy"), "SUCCEEDED");
  EXPECT_EQ(kfp_->acceptedReportsFor("run-healthy", "FAILED"), 0u);
  ctl.signal(SIGTERM);
  EXPECT_EQ(ctl.wait(15s), 0) << ctl.log();
}

// A run completes while the controller runs: the agent reports it and KFP
// labels it at the same time as the controller corrects it.
TEST_P(KfpVersionE2e, ARunCompletingWhileTheControllerRunsRacesTheAgent) {
  KfpRunSpec running = recentMasked("racing");
  running.completed = false;
  create(running);
  startAgent();
  ASSERT_TRUE(waitFor([&] { return kfpState("run-racing") == "RUNNING"; }, 20s));
  ControllerProcess& ctl = startController({"--leader-elect=false"});

  KfpRunSpec done = running;
  done.completed = true;
  json completed = json::parse(makeKfpRunJson(done));
  json live = get("racing");
  completed["metadata"] = live["metadata"];
  completed["metadata"]["labels"]["workflows.argoproj.io/completed"] = "true";
  completed["metadata"]["labels"]["workflows.argoproj.io/phase"] = "Succeeded";
  ASSERT_TRUE(client_->update(resources::kWorkflows, "kubeflow", "racing", completed).ok());

  ASSERT_TRUE(waitFor(
      [&] {
        return workflowDeletes() > 0 || (kfpState("run-racing") == "FAILED" && corrected("racing"));
      },
      30s))
      << ctl.log();
  ASSERT_TRUE(agentRounds(3, 1));
  expectNothingDeleted();
  expectFailedOnce("racing");
  EXPECT_EQ(get("racing")["status"]["phase"], "Failed");
  ctl.signal(SIGTERM);
  EXPECT_EQ(ctl.wait(15s), 0) << ctl.log();
}

// KFP never created this run: a report would make KFP delete the Workflow.
// (No agent here: KFP's own agent would report it and KFP would delete it,
// whatever the controller does.)
TEST_P(KfpVersionE2e, AnUnknownRunIsNeverReported) {
  seedUnknown(recentMasked("stranger"));
  ControllerProcess& ctl = startController({"--leader-elect=false"});
  ASSERT_TRUE(waitFor(
      [&] {
        return workflowDeletes() > 0 || kfp_->acceptedReports() > 0 ||
               (kfp_->runGets("run-stranger") > 0 && get("stranger").is_object() &&
                get("stranger")["status"]["phase"] == "Failed");
      },
      30s))
      << ctl.log();
  expectNothingDeleted();
  EXPECT_TRUE(get("stranger").is_object());
  for (const auto& r : kfp_->reports())
    EXPECT_NE(r.runId, "run-stranger") << "reported a run KFP does not know";
  EXPECT_FALSE(kfp_->run("run-stranger").has_value());
  ctl.signal(SIGTERM);
  EXPECT_EQ(ctl.wait(15s), 0) << ctl.log();
}

// The user retries the corrected run in KFP (RetryRun rebuilds the Workflow
// from the last report) and this time it truly succeeds: it stays Succeeded
// and is not reported FAILED again.
TEST_P(KfpVersionE2e, AKfpRetryThatSucceedsStaysSucceeded) {
  create(recentMasked("retried"));
  startAgent();
  ControllerProcess& ctl = startController({"--leader-elect=false"});
  ASSERT_TRUE(waitFor(
      [&] {
        return workflowDeletes() > 0 ||
               (kfpState("run-retried") == "FAILED" && corrected("retried") && labelled("retried"));
      },
      30s))
      << ctl.log();
  ASSERT_EQ(workflowDeletes(), 0);

  Status retried = kfp_->retryRun("run-retried");
  ASSERT_TRUE(retried.ok()) << retried.error().describe();
  ASSERT_EQ(get("retried")["status"]["phase"], "Running");
  // Argo re-runs the failed part; now everything succeeds.
  KfpRunSpec healthy = recentMasked("retried");
  healthy.bodyFails = false;
  json succeeded = json::parse(makeKfpRunJson(healthy));
  json live = get("retried");
  succeeded["metadata"] = live["metadata"];
  succeeded["metadata"]["labels"]["workflows.argoproj.io/completed"] = "true";
  succeeded["metadata"]["labels"]["workflows.argoproj.io/phase"] = "Succeeded";
  ASSERT_TRUE(client_->update(resources::kWorkflows, "kubeflow", "retried", succeeded).ok());

  ASSERT_TRUE(waitFor([&] { return kfpState("run-retried") == "SUCCEEDED"; }, 20s)) << ctl.log();
  ASSERT_TRUE(agentRounds(4, 1));
  expectNothingDeleted();
  EXPECT_EQ(kfpState("run-retried"), "SUCCEEDED");
  EXPECT_EQ(get("retried")["status"]["phase"], "Succeeded");
  EXPECT_EQ(kfp_->acceptedReportsFor("run-retried", "FAILED"), 1u)
      << KfpApiSimulator::reportsToJson(kfp_->reports());
  ctl.signal(SIGTERM);
  EXPECT_EQ(ctl.wait(15s), 0) << ctl.log();
}

// A wrong --kfp-api-url path: every KFP request is a 404 from the router. It
// must be retried, not recorded as a permanent failure of the run, so that the
// corrected URL still reports it.
TEST_P(KfpVersionE2e, AReportEndpoint404IsRetriedUntilTheUrlIsFixed) {
  create(recentMasked("misrouted"));
  startAgent();
  ASSERT_TRUE(waitFor([&] { return labelled("misrouted"); }, 20s));
  ControllerProcess& wrong = startController({"--leader-elect=false"}, "wrong", "/pipeline");
  ASSERT_TRUE(waitFor([&] { return workflowDeletes() > 0 || kfp_->unroutedRequests() >= 3; }, 30s))
      << "the controller gave up after " << kfp_->unroutedRequests() << " requests\n"
      << wrong.log();
  EXPECT_EQ(kfp_->acceptedReportsFor("run-misrouted", "FAILED"), 0u);
  wrong.signal(SIGTERM);
  EXPECT_EQ(wrong.wait(15s), 0) << wrong.log();

  ControllerProcess& fixed = startController({"--leader-elect=false"}, "fixed");
  ASSERT_TRUE(
      waitFor([&] { return workflowDeletes() > 0 || kfpState("run-misrouted") == "FAILED"; }, 30s))
      << fixed.log();
  ASSERT_TRUE(agentRounds(3, 1));
  expectNothingDeleted();
  expectFailedOnce("misrouted");
  fixed.signal(SIGTERM);
  EXPECT_EQ(fixed.wait(15s), 0) << fixed.log();
}

INSTANTIATE_TEST_SUITE_P(Versions, KfpVersionE2e,
                         ::testing::Values(KfpVersion::k2_0To2_3, KfpVersion::k2_4To2_16,
                                           KfpVersion::k2_17, KfpVersion::kMaster),
                         versionName);

}  // namespace
}  // namespace exitrec::e2e
