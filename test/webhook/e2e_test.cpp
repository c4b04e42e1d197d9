// End to end through the Kubernetes API simulator: the webhook reads the
// Workflow and the run's pods through a real KubeClient; the test acts as the
// API server (sends the AdmissionReview over HTTPS, applies the JSONPatch,
// stores the admitted pod). The pod-annotation controller's own tests are in
// test/pod_annotations/.
#include <gtest/gtest.h>

#include "common/base64.h"
#include "common/clock.h"
#include "test/webhook/recording_metrics.h"
#include "test/webhook/sim_env.h"
#include "test/webhook/test_support.h"
#include "test/webhook/tls_client.h"
#include "webhook/admission_webhook.h"

namespace exitrec::testing {
namespace {

using json = nlohmann::json;

class WebhookE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("exitrec-webhook-e2e-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    env_ = SimEnv::start(dir_ + "/kube", "kubeflow-user");
    ASSERT_NE(env_, nullptr);
    certs_ = writeTestCerts(dir_ + "/tls");
  }
  void TearDown() override {
    if (webhook_)
      webhook_->stop();
    env_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A run of the compiled pipeline `file` (under kCompiled) in scenario `sc`,
  // seeded into the simulated API server. Callers wrap it in
  // ASSERT_NO_FATAL_FAILURE.
  void seedRun(const std::string& file, const Scenario& sc, KfpRun& run) {
    run = makeRunFromFile(kCompiled + "/" + file, sc);
    ASSERT_TRUE(env_->seed(run.json).ok());
  }
  // The scenario most tests start from: the exit handler's body task failed.
  static Scenario failOpFailed() {
    Scenario sc;
    sc.pods["fail-op"].phase = "Failed";
    return sc;
  }
  void startWebhook() {
    AdmissionWebhookOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.certFile = certs_.certFile;
    o.keyFile = certs_.keyFile;
    webhook_ =
        std::make_unique<AdmissionWebhook>(o, env_->provider(), SystemClock::instance(), &metrics_);
    ASSERT_TRUE(webhook_->start().ok());
  }
  // What the API server does on pod CREATE with our webhook configured.
  json admitAndCreate(const json& pod) {
    TlsReply r = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods",
                           admissionReviewFor(pod, "uid-1").dump());
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    json review = json::parse(r.body);
    EXPECT_EQ(review["response"]["allowed"], true);
    json admitted = pod;
    if (review["response"].contains("patch")) {
      admitted = applyJsonPatch(
          pod, json::parse(base64Decode(review["response"]["patch"].get<std::string>()).value()));
    }
    auto created = env_->create("pods", "kubeflow-user", admitted);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    auto stored = env_->get("pods", "kubeflow-user", pod["metadata"]["name"]);
    EXPECT_TRUE(stored.ok());
    return stored.ok() ? stored.value() : json();
  }

  std::string dir_;
  std::unique_ptr<SimEnv> env_;
  TestCerts certs_;
  RecordingWebhookMetrics metrics_;
  std::unique_ptr<AdmissionWebhook> webhook_;
};

TEST_F(WebhookE2eTest, ExitTaskPodIsPatchedFromTheLiveWorkflow) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run in the simulator");
  KfpRun run;
  ASSERT_NO_FATAL_FAILURE(seedRun("pipeline_with_task_final_status.yaml", failOpFailed(), run));
  startWebhook();
  json stored = admitAndCreate(
      buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.exit-op.executor")));
  EXPECT_EQ(envOf(stored, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  EXPECT_EQ(envOf(stored, "main", "KFP_WORKFLOW_STATUS"), "Failed");
  EXPECT_EQ(executorInputOf(stored, "main")["inputs"]["parameterValues"]["status"]["state"],
            "FAILED");
  EXPECT_EQ(stored["metadata"]["annotations"]["exit-reconciler.io/injected"], "webhook");
  // A body pod goes through unchanged.
  json body =
      admitAndCreate(buildArgoPod(run.json, run.node("root.exit-handler-1.print-op.executor")));
  EXPECT_EQ(envOf(body, "main", "KFP_WORKFLOW_STATUS"), "");
  EXPECT_EQ(webhook_->count(InjectionResult::kInjected), 1u);
}

TEST_F(WebhookE2eTest, LaggingWorkflowIsCompletedFromTheRunsPods) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run in the simulator");
  // The stored Workflow still shows fail-op running; its pod has failed.
  Scenario sc;
  sc.running.insert("fail-op");
  KfpRun run;
  ASSERT_NO_FATAL_FAILURE(seedRun("pipeline_with_exit_handler.yaml", sc, run));
  json failedPod = buildArgoPod(run.json, run.node("root.exit-handler-1.fail-op.executor"));
  failedPod["status"] = {
      {"phase", "Failed"},
      {"containerStatuses", json::array({{{"name", "main"},
                                          {"state",
                                           {{"terminated",
                                             {{"exitCode", 1},
                                              {"reason", "Error"},
                                              {"finishedAt", "2026-11-28T12:05:00Z"}}}}}}})}};
  ASSERT_TRUE(env_->seed(failedPod).ok());
  startWebhook();
  json stored = admitAndCreate(
      buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor")));
  EXPECT_EQ(envOf(stored, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  json failures = json::parse(envOf(stored, "main", "KFP_WORKFLOW_FAILURES"));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0]["message"], "Error (exit code 1)");
}

TEST_F(WebhookE2eTest, ApiErrorsAdmitThePodUnchanged) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run in the simulator");
  KfpRun run;
  ASSERT_NO_FATAL_FAILURE(seedRun("pipeline_with_exit_handler.yaml", Scenario{}, run));
  env_->failNext("get", "workflows", 1, 503);
  startWebhook();
  json stored = admitAndCreate(
      buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor")));
  EXPECT_EQ(envOf(stored, "main", "KFP_WORKFLOW_STATUS"), "");
  EXPECT_EQ(webhook_->count(InjectionResult::kApiUnavailable), 1u);
}

TEST_F(WebhookE2eTest, LauncherPodsOfAKnownRunAreRuledOutFromTheCachedSpec) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 run in the simulator");
  KfpRun run;
  ASSERT_NO_FATAL_FAILURE(seedRun("pipeline_with_exit_handler.yaml", failOpFailed(), run));
  startWebhook();
  // A launcher pod without the on-exit label could be a 2.0-2.3 sibling exit
  // task: the first one of a run needs the Workflow's spec (read and cached).
  json body = buildArgoPod(run.json, run.node("root.exit-handler-1.fail-op.executor"));
  const std::string uid = body["metadata"]["ownerReferences"][0]["uid"];
  EXPECT_EQ(env_->provider().cachedWorkflowSpec("kubeflow-user", run.name, uid), nullptr);
  auto first = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods",
                         admissionReviewFor(body, "b1").dump());
  ASSERT_TRUE(first.ok && first.status == 200) << first.error << first.body;
  EXPECT_NE(env_->provider().cachedWorkflowSpec("kubeflow-user", run.name, uid), nullptr);
  EXPECT_EQ(env_->provider().cachedWorkflowSpec("kubeflow-user", run.name, "other-uid"), nullptr);
  // Later ones are ruled out from the cached spec, without I/O: the API
  // being down does not matter.
  env_->failNext("get", "workflows", 10, 503);
  env_->failNext("list", "pods", 10, 503);
  body["metadata"]["name"] = "second-launcher";
  auto second = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods",
                          admissionReviewFor(body, "b2").dump());
  ASSERT_TRUE(second.ok && second.status == 200) << second.error << second.body;
  EXPECT_FALSE(json::parse(second.body)["response"].contains("patch"));
  EXPECT_EQ(webhook_->count(InjectionResult::kOutOfScope), 2u);
  EXPECT_EQ(webhook_->count(InjectionResult::kApiUnavailable), 0u);
}

}  // namespace
}  // namespace exitrec::testing
