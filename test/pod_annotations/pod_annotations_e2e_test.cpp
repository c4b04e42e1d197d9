// The pod-annotation controller (controller/pod_annotations/) against the
// Kubernetes API simulator through a real KubeClient and the production
// adapters: the channel annotates a Pending exit-task pod and records the
// injection on the Workflow; the pod watch finds such pods by itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "common/clock.h"
#include "controller/pod_annotations/pod_annotation_channel.h"
#include "test/webhook/recording_metrics.h"
#include "test/webhook/sim_env.h"
#include "test/webhook/test_support.h"

namespace exitrec::testing {
namespace {

using json = nlohmann::json;

class PodAnnotationsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("exitrec-pod-annotations-e2e-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    env_ = SimEnv::start(dir_ + "/kube", "kubeflow-user");
    ASSERT_NE(env_, nullptr);
  }
  void TearDown() override {
    env_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A run of the compiled pipeline `file` (under kCompiled) whose exit
  // handler's body task failed, seeded into the simulated API server.
  // Callers wrap it in ASSERT_NO_FATAL_FAILURE.
  void seedRun(const std::string& file, KfpRun& run) {
    Scenario sc;
    sc.pods["fail-op"].phase = "Failed";
    run = makeRunFromFile(kCompiled + "/" + file, sc);
    ASSERT_TRUE(env_->seed(run.json).ok());
  }

  std::string dir_;
  std::unique_ptr<SimEnv> env_;
  RecordingPodAnnotationMetrics podMetrics_;
};

TEST_F(PodAnnotationsE2eTest, PodAnnotationChannelAnnotatesPodAndRecordsOnWorkflow) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run in the simulator");
  KfpRun run;
  ASSERT_NO_FATAL_FAILURE(seedRun("pipeline_with_exit_handler.yaml", run));
  json pod = buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor"));
  ASSERT_TRUE(env_->seed(pod).ok());  // created without the webhook

  PodAnnotationChannel channel(env_->writer(), env_->provider(), SystemClock::instance(),
                               &podMetrics_);
  auto live = env_->get("pods", "kubeflow-user", pod["metadata"]["name"]);
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(PodAnnotationChannel::wants(live.value()));
  auto r = channel.handle(live.value());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value(), InjectionResult::kInjected);
  EXPECT_EQ(podMetrics_.injections(InjectionResult::kInjected), 1u);

  auto after = env_->get("pods", "kubeflow-user", pod["metadata"]["name"]);
  ASSERT_TRUE(after.ok());
  const json& ann = after.value()["metadata"]["annotations"];
  EXPECT_EQ(ann["exit-reconciler.io/injected"], "annotation");
  EXPECT_EQ(ann["exit-reconciler.io/exit-handler-status"], "Failed");
  EXPECT_EQ(ann["exit-reconciler.io/workflow-status"], "Failed");
  EXPECT_EQ(json::parse(ann["exit-reconciler.io/workflow-failures"].get<std::string>()).size(), 1u);
  EXPECT_EQ(
      json::parse(ann["exit-reconciler.io/pipeline-task-final-status"].get<std::string>())["state"],
      "FAILED");
  // Argo's own annotations are kept (merge patch).
  EXPECT_EQ(ann["workflows.argoproj.io/node-name"],
            pod["metadata"]["annotations"]["workflows.argoproj.io/node-name"]);

  auto wf = env_->get("workflows", "kubeflow-user", run.name);
  ASSERT_TRUE(wf.ok());
  bool recorded = false;
  for (const auto& [k, v] : wf.value()["metadata"]["annotations"].items()) {
    if (k.rfind("exit-reconciler.io/exit-task-injection-", 0) != 0)
      continue;
    json rec = json::parse(v.get<std::string>());
    EXPECT_EQ(rec["pod"], pod["metadata"]["name"]);
    EXPECT_EQ(rec["channel"], "annotation");
    EXPECT_EQ(rec["exitHandlerStatus"], "Failed");
    recorded = true;
  }
  EXPECT_TRUE(recorded);

  // Injected once: the channel leaves it alone afterwards.
  EXPECT_FALSE(PodAnnotationChannel::wants(after.value()));
  auto again = channel.handle(after.value());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), InjectionResult::kAlreadyInjected);
  // A running pod is not wanted; a driver pod is skipped.
  json running = pod;
  running["status"]["phase"] = "Running";
  EXPECT_FALSE(PodAnnotationChannel::wants(running));
  json driver = buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op-driver"));
  auto skipped = channel.handle(driver);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(skipped.value(), InjectionResult::kSkipped);
  EXPECT_EQ(podMetrics_.injections(InjectionResult::kAlreadyInjected), 1u);
  EXPECT_EQ(podMetrics_.injections(InjectionResult::kSkipped), 1u);
}

// Polls the simulator (real time: the informer runs against a real server).
bool eventually(const std::function<bool()>& cond) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    if (cond())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

TEST_F(PodAnnotationsE2eTest, PodWatchAnnotatesPendingExitTaskPodsItSees) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run in the simulator");
  KfpRun run;
  ASSERT_NO_FATAL_FAILURE(seedRun("pipeline_with_exit_handler.yaml", run));
  PodAnnotationChannel channel(env_->writer(), env_->provider(), SystemClock::instance(),
                               &podMetrics_);
  PodWatchOptions po;
  po.namespaceName = "kubeflow-user";
  auto watch = env_->makePodWatch(channel, po);
  watch->start();
  ASSERT_TRUE(eventually([&] { return watch->hasSynced(); }));

  // Created after the watch started (as Argo creates them, no webhook):
  // a pending exit-task pod and a pending body pod of the same run.
  json exitPod = buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor"));
  exitPod["status"] = {{"phase", "Pending"}};
  json bodyPod = buildArgoPod(run.json, run.node("root.exit-handler-1.fail-op.executor"));
  bodyPod["metadata"]["name"] = "body-pod";
  bodyPod["status"] = {{"phase", "Pending"}};
  ASSERT_TRUE(env_->create("pods", "kubeflow-user", bodyPod).ok());
  ASSERT_TRUE(env_->create("pods", "kubeflow-user", exitPod).ok());
  const std::string exitName = exitPod["metadata"]["name"];

  json ann;
  ASSERT_TRUE(eventually([&] {
    auto p = env_->get("pods", "kubeflow-user", exitName);
    if (!p.ok() || !p.value()["metadata"].contains("annotations"))
      return false;
    ann = p.value()["metadata"]["annotations"];
    return ann.contains("exit-reconciler.io/injected");
  })) << "exit-task pod never annotated";
  EXPECT_EQ(ann["exit-reconciler.io/injected"], "annotation");
  EXPECT_EQ(ann["exit-reconciler.io/exit-handler-status"], "Failed");
  EXPECT_EQ(ann["exit-reconciler.io/workflow-status"], "Failed");
  EXPECT_EQ(json::parse(ann["exit-reconciler.io/workflow-failures"].get<std::string>()).size(), 1u);

  // The injection is recorded on the Workflow (patched right after the pod).
  int records = 0;
  ASSERT_TRUE(eventually([&] {
    auto wf = env_->get("workflows", "kubeflow-user", run.name);
    records = 0;
    if (!wf.ok() || !wf.value()["metadata"].contains("annotations"))
      return false;
    for (const auto& [k, v] : wf.value()["metadata"]["annotations"].items()) {
      if (k.rfind("exit-reconciler.io/exit-task-injection-", 0) != 0)
        continue;
      json rec = json::parse(v.get<std::string>());
      EXPECT_EQ(rec["pod"], exitName);
      EXPECT_EQ(rec["channel"], "annotation");
      ++records;
    }
    return records > 0;
  }));
  EXPECT_EQ(records, 1);

  // The body pod was looked at (it might have been a 2.0-2.3 exit task) and
  // left alone; the annotated pod is not handled again.
  ASSERT_TRUE(eventually([&] { return watch->stats().handled >= 2; }));
  watch->stop();
  auto body = env_->get("pods", "kubeflow-user", "body-pod");
  ASSERT_TRUE(body.ok());
  EXPECT_FALSE(body.value()["metadata"]["annotations"].contains("exit-reconciler.io/injected"));
  EXPECT_EQ(watch->stats().injected, 1u);
  EXPECT_EQ(watch->stats().handled, 2u);
}

}  // namespace
}  // namespace exitrec::testing
