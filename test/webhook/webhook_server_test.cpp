// AdmissionReview round trips over real HTTPS (127.0.0.1, port 0), for every
// KFP generation, against pods shaped as Argo and the KFP driver create them.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <thread>

#include "common/base64.h"
#include "common/clock.h"
#include "common/fake_clock.h"
#include "test/webhook/recording_metrics.h"
#include "test/webhook/test_support.h"
#include "test/webhook/tls_client.h"
#include "webhook/admission_webhook.h"

namespace exitrec::testing {
namespace {

using json = nlohmann::json;

std::string tempDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("exitrec-webhook-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

class WebhookServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ =
        writeTestCerts(tempDir(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  }
  void TearDown() override {
    provider_.release();  // never leave a worker blocked in the fake API
    if (webhook_)
      webhook_->stop();
    std::filesystem::remove_all(certs_.dir);
  }
  void start(Clock& clock, std::chrono::milliseconds deadline = std::chrono::milliseconds(2000)) {
    AdmissionWebhookOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.certFile = certs_.certFile;
    o.keyFile = certs_.keyFile;
    o.deadline = deadline;
    o.workers = 2;
    webhook_ = std::make_unique<AdmissionWebhook>(o, provider_, clock, &metrics_);
    Status s = webhook_->start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_GT(webhook_->port(), 0);
  }
  // POSTs the review over HTTPS and returns the parsed response (asserting 200).
  json post(const json& review) {
    TlsReply r = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods", review.dump());
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }
  // The pod after the API server applied the response's patch.
  json admitted(const json& pod, const json& response, const std::string& uid) {
    EXPECT_EQ(response["apiVersion"], "admission.k8s.io/v1");
    EXPECT_EQ(response["kind"], "AdmissionReview");
    EXPECT_EQ(response["response"]["uid"], uid);
    EXPECT_EQ(response["response"]["allowed"], true);
    if (!response["response"].contains("patch"))
      return pod;
    EXPECT_EQ(response["response"]["patchType"], "JSONPatch");
    json ops = json::parse(base64Decode(response["response"]["patch"].get<std::string>()).value());
    return applyJsonPatch(pod, ops);
  }
  json roundTrip(const json& pod, const std::string& uid = "a1b2c3") {
    return admitted(pod, post(admissionReviewFor(pod, uid)), uid);
  }

  TestCerts certs_;
  FakeStateProvider provider_;
  RecordingWebhookMetrics metrics_;
  std::unique_ptr<AdmissionWebhook> webhook_;
};

TEST_F(WebhookServerTest, HookGenerationBodyFailedAndSucceeded) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 round trip");
  Scenario failing;
  failing.name = "run-failing";
  failing.pods["fail-op"].phase = "Failed";
  KfpRun bad = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", failing);
  Scenario passing;
  passing.name = "run-passing";
  KfpRun good = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", passing);
  provider_.put(bad);
  provider_.put(good);
  start(SystemClock::instance());

  json pod =
      roundTrip(buildArgoPod(bad.json, bad.node("root.exit-handler-1.onExit.print-op.executor")));
  EXPECT_EQ(envOf(pod, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  EXPECT_EQ(envOf(pod, "main", "KFP_WORKFLOW_STATUS"), "Failed");
  json failures = json::parse(envOf(pod, "main", "KFP_WORKFLOW_FAILURES"));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0]["phase"], "Failed");
  EXPECT_EQ(json::parse(envOf(pod, "main", "KFP_PIPELINE_TASK_FINAL_STATUS"))["state"], "FAILED");

  json ok =
      roundTrip(buildArgoPod(good.json, good.node("root.exit-handler-1.onExit.print-op.executor")));
  EXPECT_EQ(envOf(ok, "main", "KFP_EXIT_HANDLER_STATUS"), "Succeeded");
  EXPECT_EQ(envOf(ok, "main", "KFP_WORKFLOW_FAILURES"), "[]");
  EXPECT_EQ(webhook_->count(InjectionResult::kInjected), 2u);
  EXPECT_EQ(metrics_.reviews(InjectionResult::kInjected), 2u);
  EXPECT_EQ(metrics_.inScopeReviews(), 2u);
  EXPECT_EQ(metrics_.certificatesLoaded(), 1u);  // at start()
}

TEST_F(WebhookServerTest, FinalStatusRewriteAndPlaceholderOverHttps) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.14 round trip");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_task_final_status.yaml", sc);
  provider_.put(run);
  start(SystemClock::instance());
  PodBuildOptions po;
  po.mlmdState = "COMPLETE";  // MLMD claims the body completed
  json pod = roundTrip(
      buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.exit-op.executor"), po));
  json st = executorInputOf(pod, "main")["inputs"]["parameterValues"]["status"];
  EXPECT_EQ(st["state"], "FAILED");
  EXPECT_EQ(st["error"]["code"], kRpcUnknown);
  EXPECT_FALSE(st["error"]["message"].get<std::string>().empty());
}

TEST_F(WebhookServerTest, SiblingAndV1Generations) {
  REQUIRE_SHARED_FIXTURES("KFP v1 round trip");
  Scenario sib;
  sib.name = "run-sibling";
  sib.pods["fail-op"].phase = "Failed";
  KfpRun sibling = makeRunFromFile(kOwnData + "/kfp-v2.3-sibling-exit-handler.yaml", sib);
  Scenario v1sc;
  v1sc.name = "run-v1";
  v1sc.pods["save"].phase = "Failed";
  KfpRun v1 = makeRunFromFile(kSharedFixtures + "/kfp/v1/basic.yaml", v1sc);
  provider_.put(sibling);
  provider_.put(v1);
  start(SystemClock::instance());
  json a = roundTrip(buildArgoPod(sibling.json, sibling.node("root.print-op.executor")));
  EXPECT_EQ(envOf(a, "main", "KFP_EXIT_HANDLER_STATUS"), "Failed");
  json b = roundTrip(buildArgoPod(v1.json, v1.node("onExit")));
  EXPECT_EQ(envOf(b, "main", "KFP_WORKFLOW_STATUS"), "Failed");
}

TEST_F(WebhookServerTest, OutOfScopePodsAreReturnedUnchanged) {
  REQUIRE_SHARED_FIXTURES("out-of-scope pods of a KFP run");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  provider_.put(run);
  start(SystemClock::instance());
  json body = buildArgoPod(run.json, run.node("root.exit-handler-1.fail-op.executor"));
  json r = post(admissionReviewFor(body, "u1"));
  EXPECT_EQ(r["response"]["allowed"], true);
  EXPECT_FALSE(r["response"].contains("patch"));
  json plain = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "web"}, {"namespace", "default"}}},
                {"spec", {{"containers", json::array({{{"name", "web"}, {"image", "nginx"}}})}}}};
  r = post(admissionReviewFor(plain, "u2"));
  EXPECT_EQ(r["response"]["uid"], "u2");
  EXPECT_FALSE(r["response"].contains("patch"));
  // Not a CREATE: allowed unchanged.
  json upd = admissionReviewFor(plain, "u3");
  upd["request"]["operation"] = "UPDATE";
  r = post(upd);
  EXPECT_FALSE(r["response"].contains("patch"));
  EXPECT_EQ(webhook_->count(InjectionResult::kOutOfScope), 3u);
  EXPECT_EQ(webhook_->count(InjectionResult::kInjected), 0u);
}

TEST_F(WebhookServerTest, OneKeptAliveConnectionCarriesManyReviews) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit pod over a kept-alive connection");
  Scenario sc;
  sc.pods["fail-op"].phase = "Failed";
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", sc);
  provider_.put(run);
  start(SystemClock::instance());
  json plain = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "web"}, {"namespace", "default"}}},
                {"spec", {{"containers", json::array({{{"name", "web"}, {"image", "nginx"}}})}}}};
  json exitPod = buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor"));
  TlsConnection conn(webhook_->port(), certs_.caFile);
  for (int i = 0; i < 6; ++i) {
    const std::string uid = "k" + std::to_string(i);
    const json& pod = i % 3 == 2 ? exitPod : plain;
    TlsReply r = conn.post("/mutate-pods", admissionReviewFor(pod, uid).dump());
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.status, 200) << r.body;
    json resp = json::parse(r.body);
    EXPECT_EQ(resp["response"]["uid"], uid);
    EXPECT_EQ(resp["response"].contains("patch"), i % 3 == 2) << i;
  }
  EXPECT_EQ(conn.handshakes(), 1);
  EXPECT_EQ(webhook_->count(InjectionResult::kInjected), 2u);
  EXPECT_EQ(webhook_->count(InjectionResult::kOutOfScope), 4u);
}

TEST_F(WebhookServerTest, GarbageGets400WithAMessage) {
  start(SystemClock::instance());
  for (const std::string& body :
       {std::string("not json"), std::string("[1,2]"),
        std::string(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})"),
        std::string(R"({"apiVersion":"v1","kind":"Pod"})")}) {
    TlsReply r = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods", body);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find("malformed AdmissionReview"), std::string::npos) << r.body;
  }
  EXPECT_EQ(webhook_->count(InjectionResult::kBadRequest), 4u);
}

TEST_F(WebhookServerTest, DeeplyNestedInputDoesNotExhaustTheHandlerStack) {
  // Handlers run on the HTTP server's worker threads (normal-size stacks);
  // deeply nested input must still not exhaust one.
  start(SystemClock::instance());
  const int depth = 200000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  TlsReply r = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods", nested);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 400);
  const std::string review =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d1",)"
      R"("kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"ns",)"
      R"("object":{"metadata":{"name":"p","labels":{"pipeline/runid":"r"}},"spec":{"x":)" +
      nested + "}}}}";
  r = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods", review);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 200);
  EXPECT_EQ(json::parse(r.body)["response"]["uid"], "d1");
  // Still serving.
  json plain = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "web"}}}};
  EXPECT_EQ(post(admissionReviewFor(plain, "after"))["response"]["uid"], "after");
}

TEST_F(WebhookServerTest, ApiDownAllowsUnchangedAndCounts) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit pod");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", Scenario{});
  provider_.put(run);
  provider_.failWith(Error(ErrorCode::kTransient, "dial tcp 10.0.0.1:443: connection refused"));
  start(SystemClock::instance());
  json pod = buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor"));
  json r = post(admissionReviewFor(pod, "down"));
  EXPECT_EQ(r["response"]["allowed"], true);
  EXPECT_FALSE(r["response"].contains("patch"));
  EXPECT_EQ(webhook_->count(InjectionResult::kApiUnavailable), 1u);
  EXPECT_EQ(metrics_.reviews(InjectionResult::kApiUnavailable), 1u);
}

TEST_F(WebhookServerTest, PastTheDeadlineAllowsUnchangedAndCounts) {
  REQUIRE_SHARED_FIXTURES("KFP >= 2.4 exit pod");
  KfpRun run = makeRunFromFile(kCompiled + "/pipeline_with_exit_handler.yaml", Scenario{});
  provider_.put(run);
  provider_.block();  // the API server hangs
  FakeClock clock;
  start(clock, std::chrono::milliseconds(2000));
  json pod = buildArgoPod(run.json, run.node("root.exit-handler-1.onExit.print-op.executor"));
  auto reply = std::async(std::launch::async, [&] {
    return httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods",
                     admissionReviewFor(pod, "slow").dump());
  });
  // Wait until the handler waits on its deadline, then move time past it.
  for (int i = 0; i < 2000 && clock.waiterCount() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GT(clock.waiterCount(), 0u);
  clock.advance(std::chrono::milliseconds(1999));
  // Still parked on its deadline, which is ahead of the clock: no answer yet.
  EXPECT_EQ(clock.dueWaiters(), 0u);
  EXPECT_EQ(reply.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  clock.advance(std::chrono::milliseconds(2));
  TlsReply r = reply.get();
  ASSERT_TRUE(r.ok) << r.error;
  json j = json::parse(r.body);
  EXPECT_EQ(j["response"]["allowed"], true);
  EXPECT_EQ(j["response"]["uid"], "slow");
  EXPECT_FALSE(j["response"].contains("patch"));
  EXPECT_EQ(webhook_->count(InjectionResult::kDeadlineExceeded), 1u);
  provider_.release();
  webhook_->stop();  // its worker uses `clock`, which dies with this scope
}

TEST_F(WebhookServerTest, CertificateRotationOnDiskIsPickedUpWithoutRestart) {
  start(SystemClock::instance());
  json plain = {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
                {"spec", {{"containers", json::array({{{"name", "web"}}})}}}};
  const std::string review = admissionReviewFor(plain, "r").dump();
  TlsReply before = httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods", review);
  ASSERT_TRUE(before.ok) << before.error;

  // Rotate: a new serving certificate from a new CA, written atomically.
  TestCerts next = writeTestCerts(certs_.dir + "/next", "webhook-rotated");
  ASSERT_TRUE(writeFileAtomic(certs_.keyFile,
                              [&] {
                                std::ifstream in(next.keyFile);
                                return std::string(std::istreambuf_iterator<char>(in), {});
                              }())
                  .ok());
  ASSERT_TRUE(writeFileAtomic(certs_.certFile,
                              [&] {
                                std::ifstream in(next.certFile);
                                return std::string(std::istreambuf_iterator<char>(in), {});
                              }())
                  .ok());
  // The server re-checks the files at most once a second, on handshakes.
  TlsReply after;
  for (int i = 0; i < 50; ++i) {
    after = httpsPost(webhook_->port(), next.caFile, "/mutate-pods", review);
    if (after.ok)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(after.ok) << after.error;
  EXPECT_EQ(after.status, 200);
  EXPECT_NE(after.peerCertPem, before.peerCertPem);
  // The old CA no longer verifies the server.
  EXPECT_FALSE(httpsPost(webhook_->port(), certs_.caFile, "/mutate-pods", review).ok);
}

TEST(AdmissionReviewParsing, EchoesApiVersionAndRejectsMissingFields) {
  auto v = parseAdmissionReview(
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"ns","object":{"metadata":{}}}})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->uid, "x");
  EXPECT_EQ(v->namespace_, "ns");
  auto noObject = parseAdmissionReview(
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}})");
  EXPECT_FALSE(noObject.ok());
  json resp = json::parse(admissionResponse("admission.k8s.io/v1", "x", nullptr));
  EXPECT_EQ(resp["response"], json({{"uid", "x"}, {"allowed", true}}));
  EXPECT_EQ(base64Encode("any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
}

json kfpPod(const std::string& node, bool onExit) {
  json labels = {{"pipeline/runid", "5f1c"}, {"workflows.argoproj.io/workflow", "wf"}};
  if (onExit)
    labels["workflows.argoproj.io/on-exit"] = "true";
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", "wf-p"},
            {"namespace", "kubeflow"},
            {"labels", labels},
            {"annotations", {{"workflows.argoproj.io/node-name", node}}}}},
          {"spec", {{"containers", json::array({{{"name", "main"}, {"image", "x"}}})}}}};
}

TEST(AdmissionFastPath, AnswersCertainlyOutOfScopeReviewsLikeTheFullPath) {
  json plain = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "web"}, {"labels", {{"app", "web"}}}}},
                {"spec", {{"containers", json::array({{{"name", "web"}}})}}}};
  const std::string odd = "u\"1\\x\ty\u00e9";
  json cm = admissionReviewFor(plain, "c1");
  cm["request"]["kind"] = {{"group", ""}, {"version", "v1"}, {"kind", "ConfigMap"}};
  json upd = admissionReviewFor(plain, "c2");
  upd["request"]["operation"] = "UPDATE";
  json v1beta1 = admissionReviewFor(plain, "c3");
  v1beta1["apiVersion"] = "admission.k8s.io/v1beta1";
  for (const json& review :
       {admissionReviewFor(plain, "p1"), admissionReviewFor(plain, odd), cm, upd, v1beta1,
        admissionReviewFor(kfpPod("wf.root.exit-handler-1.fail-op.driver", false), "d1"),
        admissionReviewFor(kfpPod("", true), "n1")}) {
    auto fast = fastOutOfScopeResponse(review.dump());
    ASSERT_TRUE(fast.has_value()) << review.dump();
    const std::string uid = review["request"]["uid"];
    const std::string apiVersion = review["apiVersion"];
    EXPECT_EQ(json::parse(*fast), json::parse(admissionResponse(apiVersion, uid, nullptr)))
        << *fast;
  }
}

TEST(AdmissionFastPath, LeavesPossibleExitTasksAndMalformedReviewsToTheFullPath) {
  json noObject = admissionReviewFor(kfpPod("x", false), "m1");
  noObject["request"].erase("object");
  json noUid = admissionReviewFor(kfpPod("x", false), "m2");
  noUid["request"].erase("uid");
  for (const std::string& body :
       {admissionReviewFor(kfpPod("wf.root.exit-handler-1.onExit.print-op.executor", true), "e1")
            .dump(),
        // 2.0-2.3 sibling exit tasks are told apart only with the Workflow's spec.
        admissionReviewFor(kfpPod("wf.root.print-op.executor", false), "e2").dump(),
        noObject.dump(), noUid.dump(), std::string("not json"), std::string("[1,2]"),
        std::string(R"({"apiVersion":"v1","kind":"Pod"})"),
        admissionReviewFor(kfpPod("x", false), "t1").dump().substr(0, 120)}) {
    EXPECT_FALSE(fastOutOfScopeResponse(body).has_value()) << body;
  }
}

// Duplicate keys: the full path (nlohmann::json) reads the last one, so the
// fast path must too, or the two disagree. The fuzzer's case: "kind" first a
// string (out of scope by the first key), then the Pod kind, with a null
// object: a malformed Pod CREATE, so no fast answer, and the full path's 400.
TEST(AdmissionFastPath, ReadsTheLastOfDuplicateKeysAsTheFullPathDoes) {
  const std::string podKind = R"({"group":"","version":"v1","kind":"Pod"})";
  const std::string dupKindNullObject =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d1",)"
      R"("kind":"AdmiRev2","kind":)" +
      podKind + R"(,"namespace":"kubeflow","operation":"CREATE","object":null}})";
  EXPECT_FALSE(parseAdmissionReview(dupKindNullObject).ok());
  EXPECT_FALSE(fastOutOfScopeResponse(dupKindNullObject).has_value());

  // The other way round: a Pod CREATE first, then another kind: out of scope
  // for both, and the same answer.
  const std::string dupKindOther =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"d2",)"
      R"("kind":)" +
      podKind +
      R"(,"kind":{"group":"","version":"v1","kind":"ConfigMap"},)"
      R"("operation":"CREATE","object":null}})";
  auto full = parseAdmissionReview(dupKindOther);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->kind, "ConfigMap");
  auto fast = fastOutOfScopeResponse(dupKindOther);
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(json::parse(*fast),
            json::parse(admissionResponse("admission.k8s.io/v1", "d2", nullptr)));

  // The uid and apiVersion echoed are the last ones too.
  const std::string dupUid =
      R"({"apiVersion":"admission.k8s.io/v1beta1","apiVersion":"admission.k8s.io/v1",)"
      R"("kind":"AdmissionReview","request":{"uid":"first","uid":"last","operation":"DELETE"}})";
  full = parseAdmissionReview(dupUid);
  ASSERT_TRUE(full.ok()) << full.error().message;
  fast = fastOutOfScopeResponse(dupUid);
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(json::parse(*fast),
            json::parse(admissionResponse(full->apiVersion, full->uid, nullptr)));
  EXPECT_EQ(full->uid, "last");

  // A KFP exit-task pod whose labels come twice: in scope by the last ones,
  // so no fast answer.
  json exitPod = kfpPod("wf.root.exit-handler-1.onExit.print-op.executor", true);
  std::string body = admissionReviewFor(exitPod, "d3").dump();
  const std::string labelsKey = R"("labels":{)";
  const auto at = body.find(labelsKey);
  ASSERT_NE(at, std::string::npos);
  body.insert(at, R"("labels":{"app":"web"},)");
  EXPECT_FALSE(fastOutOfScopeResponse(body).has_value()) << body;
}

TEST(AdmissionFastPath, AsksWhetherAPossibleSiblingExitTaskIsRuledOut) {
  json launcher = kfpPod("wf.root.print-op.executor", false);
  launcher["metadata"]["ownerReferences"] = {{{"apiVersion", "argoproj.io/v1alpha1"},
                                              {"kind", "Workflow"},
                                              {"name", "wf"},
                                              {"uid", "w-1"}}};
  const std::string review = admissionReviewFor(launcher, "s1").dump();
  int asked = 0;
  NotExitTaskCheck no = [&](const PodIdentity& pod, std::string_view ownerUid) {
    ++asked;
    EXPECT_EQ(pod.workflowName, "wf");
    EXPECT_EQ(pod.nodeName, "wf.root.print-op.executor");
    EXPECT_EQ(pod.namespace_, "kubeflow");
    EXPECT_EQ(ownerUid, "w-1");
    return true;
  };
  NotExitTaskCheck unknown = [&](const PodIdentity&, std::string_view) {
    ++asked;
    return false;
  };
  EXPECT_TRUE(fastOutOfScopeResponse(review, &no).has_value());
  EXPECT_FALSE(fastOutOfScopeResponse(review, &unknown).has_value());
  EXPECT_EQ(asked, 2);
  // Pods with the on-exit label are never ruled out this way.
  const std::string onExit =
      admissionReviewFor(kfpPod("wf.root.exit-handler-1.onExit.print-op.executor", true), "s2")
          .dump();
  EXPECT_FALSE(fastOutOfScopeResponse(onExit, &no).has_value());
  EXPECT_EQ(asked, 2);
}

}  // namespace
}  // namespace exitrec::testing
