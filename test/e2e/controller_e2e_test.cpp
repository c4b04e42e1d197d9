// End to end: `exit-reconciler run` against the Kubernetes API simulator and
// the KFP API simulator.

#include "test/e2e/e2e_env.h"

namespace exitrec::e2e {
namespace {

TEST_F(E2eEnv, CorrectsExactlyOnceAcrossARestartAndLeavesOthersAlone) {
  create(masked("masked-a"));
  create(masked("masked-b"));
  KfpRunSpec healthy;
  healthy.name = "healthy";
  create(healthy);
  KfpRunSpec argo = masked("plain-argo");
  argo.shape = RunShape::kArgo;
  create(argo);
  KfpRunSpec running = masked("running");
  running.completed = false;
  create(running);
  KfpRunSpec hookFailed = masked("hook-body-failed");  // ≥2.4 reports Failed itself
  hookFailed.shape = RunShape::kV2Hook;
  create(hookFailed);

  ControllerProcess& first = startController({"--leader-elect=false"});
  ASSERT_TRUE(waitFor([&] { return corrected("masked-a") && corrected("masked-b"); }, 20s))
      << first.log();
  for (const char* name : {"masked-a", "masked-b"}) {
    json wf = get(name);
    EXPECT_EQ(wf["status"]["phase"], "Failed") << name;
    EXPECT_EQ(wf["metadata"]["labels"]["workflows.argoproj.io/phase"], "Failed");
    EXPECT_EQ(wf["metadata"]["labels"]["workflows.argoproj.io/completed"], "true");
    EXPECT_EQ(annotation(name, "exit-reconciler.io/reported-phase"), "Succeeded");
    EXPECT_FALSE(annotation(name, "exit-reconciler.io/kfp-reported-at").empty());
    EXPECT_EQ(reportsFor(name), 1) << name;
    EXPECT_EQ(kfp_->run("run-" + std::string(name))->state, "FAILED");
    EXPECT_EQ(events(name, "RunPhaseCorrected"), std::make_pair(1, 1)) << name;
  }

  // A running run completes, mis-reported: it is corrected too.
  KfpRunSpec completes = running;
  completes.completed = true;
  json done = json::parse(makeKfpRunJson(completes));
  json live = get("running");
  done["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"];
  ASSERT_TRUE(client_->update(resources::kWorkflows, "kubeflow", "running", done).ok());
  ASSERT_TRUE(waitFor([&] { return corrected("running"); }, 20s)) << first.log();
  EXPECT_EQ(reportsFor("running"), 1);

  // SIGTERM: clean exit.
  first.signal(SIGTERM);
  EXPECT_EQ(first.wait(15s), 0) << first.log();

  // Restart: nothing is corrected, reported or announced twice.
  const int patchesBefore = patchesFor("masked-a") + patchesFor("masked-b");
  ControllerProcess& second = startController({"--leader-elect=false"});
  create(masked("after-restart"));
  ASSERT_TRUE(waitFor([&] { return corrected("after-restart"); }, 20s)) << second.log();
  EXPECT_EQ(patchesFor("masked-a") + patchesFor("masked-b"), patchesBefore);
  EXPECT_EQ(reportsFor("masked-a"), 1);
  EXPECT_EQ(reportsFor("masked-b"), 1);
  EXPECT_EQ(reportsFor("running"), 1);
  EXPECT_EQ(events("masked-a", "RunPhaseCorrected"), std::make_pair(1, 1));

  // Untouched: healthy, plain Argo, ≥2.4 already-failed runs.
  for (const char* name : {"healthy", "plain-argo", "hook-body-failed"}) {
    EXPECT_EQ(patchesFor(name), 0) << name;
    EXPECT_EQ(reportsFor(name), 0) << name;
  }
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait(15s), 0) << second.log();
}

TEST_F(E2eEnv, SurvivesConflictsWatchDropsGoneAndKfpOutagesWithoutLosingACorrection) {
  ControllerProcess& ctl = startController({"--leader-elect=false"});
  // KFP outage: the next 8 KFP requests answer 503.
  kfp_->failNext(8, 503);
  create(masked("during-outage"));
  ASSERT_TRUE(waitFor([&] { return corrected("during-outage"); }, 30s)) << ctl.log();
  EXPECT_EQ(reportsFor("during-outage"), 1);
  EXPECT_EQ(get("during-outage")["status"]["phase"], "Failed");

  // 409 on the record patch.
  SimFailRule conflict;
  conflict.verb = "patch";
  conflict.resource = "workflows";
  conflict.count = 1;
  conflict.status = 409;
  kube_->failNext(conflict);
  create(masked("conflicted"));
  ASSERT_TRUE(waitFor([&] { return corrected("conflicted"); }, 20s)) << ctl.log();

  // Watch drop, then a 410 in each form: each relist or re-watch loses nothing.
  kube_->dropAllWatches();
  create(masked("after-drop"));
  ASSERT_TRUE(waitFor([&] { return corrected("after-drop"); }, 20s)) << ctl.log();
  kube_->expireNextWatch(ExpireForm::kErrorEvent);
  kube_->dropAllWatches();
  create(masked("after-410-event"));
  ASSERT_TRUE(waitFor([&] { return corrected("after-410-event"); }, 20s)) << ctl.log();
  kube_->compactHistory();
  kube_->expireNextWatch(ExpireForm::kHttp410);
  kube_->dropAllWatches();
  create(masked("after-410-http"));
  ASSERT_TRUE(waitFor([&] { return corrected("after-410-http"); }, 20s)) << ctl.log();

  // KFP 400: recorded, announced, never retried.
  kfp_->failNext(1, 400);
  create(masked("rejected"));
  ASSERT_TRUE(waitFor([&] { return corrected("rejected"); }, 20s)) << ctl.log();
  EXPECT_FALSE(annotation("rejected", "exit-reconciler.io/kfp-report-error").empty());
  EXPECT_TRUE(annotation("rejected", "exit-reconciler.io/kfp-reported-at").empty());
  const std::size_t attempts = kfp_->reports().size();
  // Barrier: a later run corrected end to end. A retry of the rejected report
  // would come first (its backoff starts at 5 ms, --max-retry-delay 500ms).
  create(masked("after-rejected"));
  ASSERT_TRUE(waitFor([&] { return corrected("after-rejected"); }, 20s)) << ctl.log();
  EXPECT_EQ(kfp_->reports().size(), attempts + 1);
  EXPECT_EQ(reportsFor("after-rejected"), 1);

  for (const char* name :
       {"during-outage", "conflicted", "after-drop", "after-410-event", "after-410-http"}) {
    EXPECT_EQ(reportsFor(name), 1) << name;
  }
  EXPECT_GE(ctl.count("watch"), 1u);
  ctl.signal(SIGTERM);
  EXPECT_EQ(ctl.wait(15s), 0) << ctl.log();
}

// --kfp-report persistence-agent: the test plays KFP's persistence agent (it
// reports the Workflow; the KFP simulator then labels it
// pipeline/persistedFinalState, as KFP does).
TEST_F(E2eEnv, PersistenceAgentModeLeavesTheReportToTheAgentAndVerifiesIt) {
  const std::string name = "agent-mode";
  const std::string runId = "run-" + name;
  auto agentReports = [&] {
    json wf = get(name);
    ASSERT_EQ(
        kfp_->handle("POST", "/apis/v1beta1/workflows", "Bearer kfp-token", json(wf.dump()).dump())
            .status,
        200);
    ASSERT_TRUE(waitFor([&] { return labelled(name); }, 5s));
  };
  create(masked(name));
  agentReports();  // the run finished: the agent reported it (Succeeded, wrongly)
  ASSERT_EQ(kfp_->run(runId)->state, "SUCCEEDED");

  const int metricsPort = freePort();
  ASSERT_GT(metricsPort, 0);
  ControllerProcess& ctl =
      startController({"--leader-elect=false", "--kfp-report", "persistence-agent",
                       "--metrics-addr", "127.0.0.1:" + std::to_string(metricsPort)});
  ASSERT_TRUE(waitFor([&] { return corrected(name); }, 20s)) << ctl.log();
  json wf = get(name);
  EXPECT_EQ(wf["status"]["phase"], "Failed");
  EXPECT_FALSE(wf["metadata"]["labels"].contains("pipeline/persistedFinalState"));
  EXPECT_EQ(reportsFor(name), 1);  // only the agent's: the controller never POSTs here
  // Barrier: the controller counts the run as waiting for the agent.
  const std::string awaiting = "exit_reconciler_runs_awaiting_persistence_agent";
  EXPECT_TRUE(waitFor([&] { return scrape(metricsPort, awaiting) == 1; }, 10s))
      << scrape(metricsPort, awaiting);
  EXPECT_TRUE(annotation(name, "exit-reconciler.io/kfp-reported-at").empty())
      << "confirmed before the agent re-reported";

  agentReports();  // the agent sees the label gone and re-reports the corrected run
  EXPECT_EQ(kfp_->run(runId)->state, "FAILED");
  ASSERT_TRUE(
      waitFor([&] { return !annotation(name, "exit-reconciler.io/kfp-reported-at").empty(); }, 20s))
      << ctl.log();
  EXPECT_EQ(reportsFor(name), 2);
  EXPECT_EQ(events(name, "RunPhaseCorrected"), std::make_pair(1, 1));
  EXPECT_TRUE(waitFor([&] { return scrape(metricsPort, awaiting) == 0; }, 10s))
      << scrape(metricsPort, awaiting);
  ctl.signal(SIGTERM);
  EXPECT_EQ(ctl.wait(15s), 0) << ctl.log();
}

TEST_F(E2eEnv, TwoReplicasUnderLeaderElectionOnlyOneActsAndTheStandbyTakesOver) {
  const std::vector<std::string> lease = {"--leader-elect",
                                          "--leader-election-namespace",
                                          "kubeflow",
                                          "--leader-election-lease-duration",
                                          "3s",
                                          "--leader-election-renew-deadline",
                                          "2s",
                                          "--leader-election-retry-period",
                                          "500ms"};
  std::vector<std::string> a = lease;
  a.insert(a.end(), {"--leader-election-identity", "replica-a"});
  std::vector<std::string> b = lease;
  b.insert(b.end(), {"--leader-election-identity", "replica-b"});
  ControllerProcess& ra = startController(a, "a");
  ASSERT_TRUE(waitFor([&] { return ra.count("became leader") == 1; }, 15s)) << ra.log();
  ControllerProcess& rb = startController(b, "b");
  create(masked("elected-1"));
  create(masked("elected-2"));
  ASSERT_TRUE(waitFor([&] { return corrected("elected-1") && corrected("elected-2"); }, 20s));
  EXPECT_EQ(rb.count("became leader"), 0u) << rb.log();
  EXPECT_EQ(rb.count(": corrected phase Succeeded -> Failed"), 0u) << rb.log();
  EXPECT_EQ(ra.count(": corrected phase Succeeded -> Failed"), 2u) << ra.log();
  EXPECT_EQ(reportsFor("elected-1"), 1);

  // The leader dies without releasing: the standby takes over within the lease.
  ra.signal(SIGKILL);
  ra.wait(5s);
  // How fast is a benchmark question; here only that it happens.
  ASSERT_TRUE(waitFor([&] { return rb.count("became leader") == 1; }, 30s)) << rb.log();
  create(masked("after-failover"));
  ASSERT_TRUE(waitFor([&] { return corrected("after-failover"); }, 20s)) << rb.log();
  EXPECT_EQ(reportsFor("after-failover"), 1);
  EXPECT_EQ(reportsFor("elected-1"), 1);
  EXPECT_EQ(reportsFor("elected-2"), 1);
  rb.signal(SIGTERM);
  EXPECT_EQ(rb.wait(15s), 0) << rb.log();
}

// A leader whose lease API stalls stops at once (issue 16): the reconcile it has
// in flight, held up in the KFP report, never writes its annotation or Event
// (before the fence, the process drained for up to 20 s and finished it).
TEST_F(E2eEnv, ALeaderWhoseLeaseApiStallsExitsWithoutFinishingInFlightWork) {
  ControllerProcess& ctl = startController(
      {"--leader-elect", "--leader-election-namespace", "kubeflow", "--leader-election-identity",
       "a", "--leader-election-lease-duration", "3s", "--leader-election-renew-deadline", "2s",
       "--leader-election-retry-period", "500ms"});
  ASSERT_TRUE(waitFor([&] { return ctl.count("became leader") == 1; }, 15s)) << ctl.log();
  kfp_->setDelay(8s);
  create(masked("in-flight"));
  // Recorded on the Workflow; the reconcile now waits for KFP.
  ASSERT_TRUE(waitFor([&] { return patchesFor("in-flight") >= 1; }, 20s)) << ctl.log();
  const int patches = patchesFor("in-flight");
  SimFailRule stall;  // the next lease calls hang for 30 s
  stall.verb = "*";
  stall.resource = "leases";
  stall.count = 20;
  stall.status = 0;
  stall.delayMs = 30000;
  kube_->failNext(stall);
  EXPECT_EQ(ctl.wait(30s), 1) << ctl.log();
  EXPECT_EQ(ctl.count("exiting at once"), 1u) << ctl.log();
  EXPECT_EQ(patchesFor("in-flight"), patches);
  EXPECT_TRUE(annotation("in-flight", "exit-reconciler.io/kfp-reported-at").empty());
  EXPECT_EQ(events("in-flight", "RunPhaseCorrected"), std::make_pair(0, 0));
  kfp_->setDelay(0ms);
}

}  // namespace
}  // namespace exitrec::e2e
