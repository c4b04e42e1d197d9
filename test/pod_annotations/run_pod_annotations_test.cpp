// End to end: `exit-reconciler run --pod-annotations` (the real binary, as a
// child process) against the Kubernetes API simulator annotates a Pending
// exit-task pod that Argo created without the webhook, and records the
// injection on the Workflow; without the flag, the pod is left alone.
#include <map>

#include "test/e2e/e2e_env.h"
#include "test/metrics/exposition.h"
#include "test/webhook/test_support.h"

namespace exitrec::e2e {
namespace {

using exitrec::testing::buildArgoPod;
using exitrec::testing::kCompiled;
using exitrec::testing::KfpRun;
using exitrec::testing::kSharedFixtures;
using exitrec::testing::makeRunFromFile;
using exitrec::testing::Scenario;

class RunPodAnnotationsTest : public E2eEnv {
 protected:
  // A KFP >= 2.4 run whose body failed, and its exit task's pod, still Pending.
  void seedRunAndPendingExitPod() {
    Scenario sc;
    sc.namespace_ = "kubeflow";
    sc.pods["fail-op"].phase = "Failed";
    run_ = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
    ASSERT_TRUE(kube_->seed(run_.json).ok());
    json pod = buildArgoPod(run_.json, run_.node("root.exit-handler-1.onExit.print-op.executor"));
    pod["status"] = {{"phase", "Pending"}};
    podName_ = pod["metadata"]["name"];
    ASSERT_TRUE(client_->create(resources::kPods, "kubeflow", pod).ok());
  }
  json podAnnotations() {
    auto p = client_->get(resources::kPods, "kubeflow", podName_);
    if (!p || !(*p)["metadata"].contains("annotations"))
      return json::object();
    return (*p)["metadata"]["annotations"];
  }

  KfpRun run_;
  std::string podName_;
};

TEST_F(RunPodAnnotationsTest, LeaderAnnotatesPendingExitTaskPodAndRecordsItOnTheWorkflow) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run for the pod-annotation channel");
  seedRunAndPendingExitPod();
  const int metricsPort = freePort();
  ASSERT_GT(metricsPort, 0);
  ControllerProcess& ctl =
      startController({"--leader-elect=false", "--pod-annotations", "--metrics-addr",
                       "127.0.0.1:" + std::to_string(metricsPort)});
  ASSERT_TRUE(
      waitFor([&] { return podAnnotations().contains("exit-reconciler.io/injected"); }, 20s))
      << ctl.log();
  json ann = podAnnotations();
  EXPECT_EQ(ann["exit-reconciler.io/injected"], "annotation");
  EXPECT_EQ(ann["exit-reconciler.io/exit-handler-status"], "Failed");
  EXPECT_EQ(ann["exit-reconciler.io/workflow-status"], "Failed");
  json failures = json::parse(ann["exit-reconciler.io/workflow-failures"].get<std::string>());
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(
      json::parse(ann["exit-reconciler.io/pipeline-task-final-status"].get<std::string>())["state"],
      "FAILED");
  ASSERT_TRUE(waitFor(
      [&] {
        json wf = get(run_.name);
        for (const auto& [k, v] : wf["metadata"]["annotations"].items()) {
          if (k.rfind("exit-reconciler.io/exit-task-injection-", 0) == 0 &&
              json::parse(v.get<std::string>())["pod"] == podName_)
            return true;
        }
        return false;
      },
      10s))
      << ctl.log();
  // The controller's metrics reach /metrics (PodAnnotationMetrics through the
  // bridge): the injection, and the pods watch's activity.
  auto sample = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    const testing::HttpResponse r = testing::httpGet(metricsPort, "/metrics");
    return r.status == 200 ? testing::parseExposition(r.body).value(name, labels).value_or(-1)
                           : -1.0;
  };
  EXPECT_TRUE(waitFor(
      [&] {
        return sample("exit_reconciler_injections_total",
                      {{"channel", "annotation"}, {"result", "injected"}}) == 1;
      },
      10s))
      << ctl.log();
  EXPECT_GT(sample("exit_reconciler_watch_last_activity_timestamp_seconds", {{"resource", "pods"}}),
            0);
}

TEST_F(RunPodAnnotationsTest, WithoutTheFlagPodsAreLeftAlone) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run for the pod-annotation channel");
  seedRunAndPendingExitPod();
  ControllerProcess& ctl = startController({"--leader-elect=false"});
  // The controller is up once it has listed (synced) its Workflow cache.
  ASSERT_TRUE(waitFor([&] { return ctl.count("completed workflows in") > 0; }, 20s)) << ctl.log();
  EXPECT_FALSE(podAnnotations().contains("exit-reconciler.io/injected"));
}

}  // namespace
}  // namespace exitrec::e2e
