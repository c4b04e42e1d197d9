// The controller's run-history sweep (`run --kfp-history-sweep`): its
// schedule and leadership fence on a FakeClock, and the real `run` against
// the Kubernetes and KFP simulators: a standby never sweeps; the leader
// corrects a mis-reported historical run whose Workflow is gone and leaves
// every other run alone.
#include "controller/history_sweep.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fake_clock.h"
#include "controller/kfp_history_client.h"
#include "controller/run_command.h"
#include "controller/run_config.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "k8sclient/leadership_gate.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_history_api.h"
#include "sim/kfp/kfp_run_factory.h"
#include "sim/kube_api_simulator.h"
#include "test/metrics/exposition.h"

namespace exitrec {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Waits on an observable condition (never a bare sleep-then-assert).
bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

KfpHistoryApi::HistoryRun historyRun(const std::string& id, const std::string& ns,
                                     std::int64_t finishedAt, std::string manifest) {
  KfpHistoryApi::HistoryRun r;
  r.runId = id;
  r.displayName = id;
  r.ns = ns;
  r.state = "SUCCEEDED";
  r.createdAt = finishedAt - 300;
  r.finishedAt = finishedAt;
  r.manifest = std::move(manifest);
  return r;
}

// A KFP 2.0–2.3 run as Argo left it; bodyFails: mis-reported (Succeeded).
std::string manifestFor(const std::string& name, const std::string& ns, const std::string& runId,
                        bool bodyFails, bool finalStateLabel = false) {
  KfpRunSpec spec;
  spec.shape = RunShape::kV2Sibling;
  spec.name = name;
  spec.ns = ns;
  spec.runId = runId;
  spec.bodyFails = bodyFails;
  json wf = json::parse(makeKfpRunJson(spec));
  wf["metadata"]["resourceVersion"] = "4711";
  if (finalStateLabel)
    wf["metadata"]["labels"]["pipeline/persistedFinalState"] = "true";
  return wf.dump();
}

class CountingMetrics : public HistorySweepMetrics {
 public:
  void runScanned() override { ++scanned; }
  void runMisreported(std::string_view, std::string_view) override { ++misreported; }
  void runCorrected() override { ++corrected; }
  void runFailed() override { ++failed; }
  void runUnreadable() override { ++unreadable; }
  void sweepDone(bool ok, double) override { ++(ok ? passes : failedPasses); }
  std::atomic<int> scanned{0}, misreported{0}, corrected{0}, failed{0}, unreadable{0}, passes{0},
      failedPasses{0};
};

// Reports straight into the history store (no transport, so no fence: the
// sweep's own gate is what is under test).
class StoreKfp : public KfpReporter {
 public:
  explicit StoreKfp(KfpHistoryApi& api) : api_(api) {}
  Status reportWorkflow(std::string_view wf) override {
    auto r = api_.handle("POST", "/apis/v1beta1/workflows", {}, std::nullopt,
                         json(std::string(wf)).dump());
    if (r.status == 404)
      return Error(ErrorCode::kNotFound, r.body);
    if (r.status != 200)
      return Error(ErrorCode::kInvalidInput, r.body);
    return Status::okStatus();
  }
  Result<std::string> runState(const std::string& id) override { return api_.run(id)->state; }

 private:
  KfpHistoryApi& api_;
};

// FakeClock's wall time is 1798000000: the runs finished an hour before.
constexpr std::int64_t kNow = 1798000000;

class HistorySweepScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api.addRun(historyRun("r1", "ns", kNow - 3600, manifestFor("wf-1", "ns", "r1", true)));
    api.addRun(historyRun("r2", "ns", kNow - 3000, manifestFor("wf-2", "ns", "r2", true)));
    ASSERT_TRUE(api.start().ok());
    auto t = makeCpprestTransport({});
    ASSERT_TRUE(t.ok());
    transport = std::move(*t);
    client = std::make_unique<KfpHistoryClient>(
        *transport, TokenSource(), KfpHistoryClient::Options{.baseUrl = api.baseUrl()});
    options.period = 10min;
    options.backfill.qps = 1000;
  }
  KfpHistoryApi api;
  std::unique_ptr<HttpTransport> transport;
  std::unique_ptr<KfpHistoryClient> client;
  StoreKfp kfp{api};
  CountingMetrics metrics;
  FakeClock clock;
  HistorySweepOptions options;
  WorkflowExists gone = [](const std::string&, const std::string&) -> Result<bool> {
    return false;
  };
};

TEST_F(HistorySweepScheduleTest, FirstPassAtStartThenEveryPeriodAndNoneAfterStop) {
  HistorySweep sweep(*client, kfp, gone, options, metrics, clock);
  sweep.start();
  ASSERT_TRUE(waitFor([&] { return metrics.passes == 1 && clock.waiterCount() == 1; }));
  EXPECT_EQ(api.run("r1")->state, "FAILED");
  EXPECT_EQ(metrics.corrected, 2);
  const std::size_t listed = api.listRequests();
  clock.advance(options.period);
  ASSERT_TRUE(waitFor([&] { return metrics.passes == 2; }));
  EXPECT_EQ(api.listRequests(), listed + 1);  // corrected runs are FAILED: none listed again
  sweep.stop();                               // joins the sweep thread
  clock.advance(options.period * 3);
  EXPECT_EQ(metrics.passes, 2);
  EXPECT_EQ(api.listRequests(), listed + 1);
}

TEST_F(HistorySweepScheduleTest, NoRunIsTouchedOnceTheLeaseFenceCloses) {
  LeaseFence fence(clock, "kubeflow/kfp-exit-reconciler");
  fence.grant(clock.now() + 1h);
  options.gate = &fence;
  // The lease is lost while the first run is being checked: that run's
  // report is the fenced transport's to refuse; the sweep starts no other.
  WorkflowExists losesLease = [&](const std::string&, const std::string&) -> Result<bool> {
    fence.revoke();
    return false;
  };
  HistorySweep sweep(*client, kfp, losesLease, options, metrics, clock);
  ASSERT_TRUE(sweep.sweepOnce().ok());
  EXPECT_EQ(metrics.scanned, 1);
  EXPECT_EQ(api.reports().size(), 1u);
  EXPECT_EQ(api.run("r2")->state, "SUCCEEDED");
  // A closed fence: no pass at all, nothing listed.
  const std::size_t listed = api.listRequests();
  Status next = sweep.sweepOnce();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(api.listRequests(), listed);
  EXPECT_EQ(metrics.passes, 1);
  EXPECT_EQ(api.run("r2")->state, "SUCCEEDED");
}

TEST_F(HistorySweepScheduleTest, MultiUserKfpWithoutNamespacesFailsThePassAndSaysWhy) {
  KfpHistoryApi multi(KfpHistoryApi::Options{.multiUser = true});
  ASSERT_TRUE(multi.start().ok());
  KfpHistoryClient mc(*transport, TokenSource(), {.baseUrl = multi.baseUrl()});
  HistorySweep sweep(mc, kfp, gone, options, metrics, clock);
  Status s = sweep.sweepOnce();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("--kfp-history-namespaces"), std::string::npos)
      << s.error().message;
  EXPECT_EQ(metrics.failedPasses, 1);
  EXPECT_EQ(multi.listRequests(), 0u);
}

// --- leadership: the elector on a FakeClock with an in-memory Lease --------

// --- `run --kfp-history-sweep` against the simulators ----------------------

class RunHistorySweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("exitrec-sweep-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    KubeApiSimulator::Options ko;
    ko.stateDir = (dir / "kube").string();
    kube = std::make_unique<KubeApiSimulator>(ko);
    ASSERT_TRUE(kube->start().ok());
    for (const char* ns : {"kubeflow", "team-a"}) {
      ASSERT_TRUE(
          kube->seed(
                  json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}})
              .ok());
    }
    auto t = makeCpprestTransport(TlsOptions{});
    ASSERT_TRUE(t.ok());
    client = std::make_unique<KubeClient>(std::shared_ptr<HttpTransport>(std::move(t).value()),
                                          kube->baseUrl(), TokenSource());
    // In the cluster, still: a mis-reported run's Workflow (the controller's).
    json present = json::parse(manifestFor("wf-present", "team-a", "present", true));
    present["metadata"].erase("resourceVersion");
    ASSERT_TRUE(kube->seed(present).ok());

    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    history.addRun(
        historyRun("gone", "team-a", now - 3600, manifestFor("wf-gone", "team-a", "gone", true)));
    history.addRun(historyRun("labelled", "team-a", now - 3500,
                              manifestFor("wf-labelled", "team-a", "labelled", true, true)));
    history.addRun(historyRun("healthy", "team-a", now - 3400,
                              manifestFor("wf-healthy", "team-a", "healthy", false)));
    history.addRun(historyRun("present", "team-a", now - 3300,
                              manifestFor("wf-present", "team-a", "present", true)));
    history.addRun(
        historyRun("old", "team-a", now - 5 * 86400, manifestFor("wf-old", "team-a", "old", true)));
    // Argo had offloaded its node status: unrecoverable once the CR is gone.
    json offloaded = json::parse(manifestFor("wf-lost", "team-a", "lost", true));
    offloaded["status"].erase("nodes");
    offloaded["status"]["offloadNodeStatusVersion"] = "fnv-123";
    history.addRun(historyRun("lost", "team-a", now - 3200, offloaded.dump()));
    KfpHistoryApi::Cluster c;
    c.exists = [this](const std::string& ns, const std::string& name) {
      return client->get(resources::kWorkflows, ns, name).ok();
    };
    c.remove = [this](const std::string& ns, const std::string& name) {
      ++deletes;
      return client->get(resources::kWorkflows, ns, name).ok();
    };
    history.setCluster(c);
    KfpHistoryApi::Identity controllerIdentity;
    controllerIdentity.allNamespaces = true;
    controllerIdentity.mayReport = true;
    history.addIdentity("kfp-token", controllerIdentity);

    KfpApiSimulator::Options kfpOptions{"127.0.0.1", 0, "kfp-token"};
    kfpOptions.kubeApiUrl = kube->baseUrl();
    kfp = std::make_unique<KfpApiSimulator>(kfpOptions);
    kfp->attachHistory(&history);
    ASSERT_TRUE(kfp->start().ok());
    const std::string tokenFile = (dir / "kfp-token").string();
    std::ofstream(tokenFile) << "kfp-token\n";

    config.kubeconfig = kube->kubeconfigPath();
    config.kfpApiUrl = kfp->baseUrl();
    config.kfpTokenFile = tokenFile;
    config.correction.kfpReport = KfpReportMode::kDirect;
    config.leaseNamespace = "kubeflow";
    config.leaseDuration = 3s;
    config.renewDeadline = 2s;
    config.retryPeriod = 200ms;
    config.healthAddr = "127.0.0.1:0";
    config.metricsAddr = "127.0.0.1:0";
    config.historySweepPeriod = 1h;  // one pass within the test
    config.historySweepWindow = 48h;
    // The controller watches kubeflow only; the sweep covers team-a, where
    // wf-present is a Workflow the sweep must leave to a controller.
    config.namespaceName = "kubeflow";
    config.historySweepNamespaces = {"team-a"};
  }
  void TearDown() override {
    stopController();
    if (kfp)
      kfp->stop();
    if (kube)
      kube->stop();
    if (!HasFailure())
      std::filesystem::remove_all(dir);
  }
  void startController() {
    RunHooks hooks;
    hooks.onServing = [this](int, int port) { metricsPort = port; };
    controller =
        std::thread([this, hooks] { controllerExit = runController(config, stop, hooks); });
    ASSERT_TRUE(waitFor([&] { return metricsPort.load() > 0; }));
  }
  void stopController() {
    stop.requestStop("test");
    if (controller.joinable())
      controller.join();
  }
  testing::Exposition scrape() {
    return testing::parseExposition(testing::httpGet(metricsPort, "/metrics").body);
  }
  double sample(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return scrape().value(name, labels).value_or(-1);
  }

  std::filesystem::path dir;
  std::unique_ptr<KubeApiSimulator> kube;
  std::unique_ptr<KubeClient> client;
  KfpHistoryApi history;
  std::unique_ptr<KfpApiSimulator> kfp;
  std::atomic<int> deletes{0};
  RunConfig config;
  StopSource stop;
  std::atomic<int> metricsPort{0};
  std::atomic<int> controllerExit{-1};
  std::thread controller;
};

TEST_F(RunHistorySweepTest, OnlyTheLeaderSweepsAndItCorrectsJustTheGoneMisreportedRuns) {
  // Another replica holds the lease for the next hour.
  ASSERT_TRUE(
      kube->seed(json{{"apiVersion", "coordination.k8s.io/v1"},
                      {"kind", "Lease"},
                      {"metadata", {{"name", "kfp-exit-reconciler"}, {"namespace", "kubeflow"}}},
                      {"spec",
                       {{"holderIdentity", "other-replica"},
                        {"leaseDurationSeconds", 3600},
                        {"leaseTransitions", 0}}}})
          .ok());
  startController();
  // A standby: it has looked at the lease several times and never swept.
  const std::map<std::string, std::string> getLease = {
      {"verb", "get"}, {"resource", "leases"}, {"code", "200"}};
  ASSERT_TRUE(
      waitFor([&] { return sample("exit_reconciler_kube_api_requests_total", getLease) >= 3; }));
  EXPECT_EQ(sample("leader_election_master_status", {{"name", "kfp-exit-reconciler"}}), 0);
  EXPECT_EQ(history.listRequests(), 0u);
  EXPECT_EQ(sample("exit_reconciler_history_sweeps_total", {{"result", "success"}}), 0);

  // The other replica releases the lease (client-go's release: holder "").
  auto lease = client->get(resources::kLeases, "kubeflow", "kfp-exit-reconciler");
  ASSERT_TRUE(lease.ok());
  (*lease)["spec"]["holderIdentity"] = "";
  ASSERT_TRUE(client->update(resources::kLeases, "kubeflow", "kfp-exit-reconciler", *lease).ok());

  ASSERT_TRUE(waitFor([&] {
    return sample("exit_reconciler_history_sweeps_total", {{"result", "success"}}) >= 1;
  })) << "the leader never finished a sweep";
  EXPECT_EQ(history.run("gone")->state, "FAILED");
  EXPECT_EQ(history.run("labelled")->state, "FAILED");
  EXPECT_EQ(history.run("healthy")->state, "SUCCEEDED");
  EXPECT_EQ(history.run("present")->state, "SUCCEEDED");  // its Workflow exists: the controller's
  EXPECT_EQ(history.run("old")->state, "SUCCEEDED");      // outside the window
  ASSERT_EQ(history.reports().size(), 2u);
  for (const auto& r : history.reports()) {
    EXPECT_FALSE(r.hadFinalStateLabel) << r.runId;
    EXPECT_TRUE(r.wroteRun) << r.runId;
  }
  EXPECT_EQ(deletes.load(), 0);
  EXPECT_TRUE(client->get(resources::kWorkflows, "team-a", "wf-present").ok());
  // The stored manifest is the controller's correction.
  EXPECT_EQ(json::parse(*history.run("gone")->manifest)["status"]["phase"], "Failed");

  auto m = scrape();
  EXPECT_EQ(m.value("exit_reconciler_history_runs_scanned_total"), 5);
  EXPECT_EQ(m.value("exit_reconciler_history_runs_corrected_total"), 2);
  EXPECT_EQ(m.value("exit_reconciler_history_runs_failed_total"), 0);
  EXPECT_EQ(m.value("exit_reconciler_history_runs_unreadable_total"), 1);
  EXPECT_EQ(history.run("lost")->state, "SUCCEEDED");
  EXPECT_EQ(m.value("exit_reconciler_history_misreported_runs_total",
                    {{"generation", "kfp-v2-sibling"}, {"cause", "exit-task-masked-failure"}}),
            3);
  EXPECT_GT(m.value("exit_reconciler_history_sweep_last_success_timestamp_seconds").value_or(0), 0);
  stopController();
  EXPECT_EQ(controllerExit.load(), 0);
}

}  // namespace
}  // namespace exitrec
