#pragma once
// Shared helpers for the webhook suites: fixture runs (RuntimeBuilder over the
// compiled KFP specs), a fake RunStateProvider, and test certificates.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "certs/certificates.h"
#include "engine/workflow.h"
#include "test/fixtures/runtime_builder.h"
#include "test/webhook/kfp_pods.h"
#include "webhook/state_provider.h"

namespace exitrec::testing {

inline const std::string kSharedFixtures = std::string(EXITREC_SHARED_DIR) + "/fixtures";
inline const std::string kCompiled = kSharedFixtures + "/kfp/compiled";
inline const std::string kOwnData = std::string(EXITREC_SOURCE_DIR) + "/test/fixtures/data";

#define REQUIRE_SHARED_FIXTURES(what)                                                        \
  do {                                                                                       \
    if (!std::filesystem::is_directory(::exitrec::testing::kSharedFixtures)) {               \
      GTEST_SKIP() << "shared fixtures not found at " << ::exitrec::testing::kSharedFixtures \
                   << ": " << what;                                                          \
    }                                                                                        \
  } while (0)

// A run: the Workflow JSON (spec + synthesized status) and its engine model.
struct KfpRun {
  nlohmann::json json;
  Workflow wf;
  std::string name;
  std::string node(const std::string& rel) const { return name + "." + rel; }
};

inline KfpRun makeRun(const nlohmann::json& spec, const Scenario& sc) {
  auto b = RuntimeBuilder::fromYaml(spec.dump());
  if (!b.ok()) {
    ADD_FAILURE() << b.error().message;
    std::abort();
  }
  KfpRun r;
  r.json = b.value().build(sc);
  r.json["metadata"]["uid"] = "0b6d2c1e-8f43-4a57-9e21-6c3d5f7a8b90";
  // As the KFP API server does (SetPodMetadataLabels): every pod of the run
  // carries pipeline/runid.
  if (!sc.runId.empty())
    r.json["spec"]["podMetadata"]["labels"]["pipeline/runid"] = sc.runId;
  auto wf = parseWorkflowJson(r.json.dump());
  if (!wf.ok()) {
    ADD_FAILURE() << wf.error().message;
    std::abort();
  }
  r.wf = std::move(wf).value();
  r.name = r.json["metadata"]["name"];
  return r;
}

inline nlohmann::json loadSpec(const std::string& path) {
  auto b = RuntimeBuilder::fromFile(path);
  if (!b.ok()) {
    ADD_FAILURE() << path << ": " << b.error().message;
    std::abort();
  }
  return b.value().spec();
}

inline KfpRun makeRunFromFile(const std::string& path, const Scenario& sc) {
  return makeRun(loadSpec(path), sc);
}

// A RunStateProvider over in-memory runs and pods. Can fail or block calls.
class FakeStateProvider : public RunStateProvider {
 public:
  void put(const KfpRun& run) {
    std::lock_guard<std::mutex> g(mu_);
    workflows_[run.name] = std::make_shared<Workflow>(run.wf);
  }
  void putPods(const std::string& wfName, std::vector<PodObservation> pods) {
    std::lock_guard<std::mutex> g(mu_);
    pods_[wfName] = std::move(pods);
  }
  void failWith(std::optional<Error> e) {
    std::lock_guard<std::mutex> g(mu_);
    fail_ = std::move(e);
  }
  // While blocked, calls wait until release().
  void block() {
    std::lock_guard<std::mutex> g(mu_);
    blocked_ = true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> g(mu_);
      blocked_ = false;
    }
    cv_.notify_all();
  }
  int workflowCalls() const { return workflowCalls_.load(); }
  int podCalls() const { return podCalls_.load(); }

  Result<std::shared_ptr<const Workflow>> workflow(std::string_view /*ns*/,
                                                   std::string_view name) override {
    ++workflowCalls_;
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !blocked_; });
    if (fail_)
      return *fail_;
    auto it = workflows_.find(std::string(name));
    if (it == workflows_.end())
      return Error(ErrorCode::kNotFound, "workflow not found");
    return std::shared_ptr<const Workflow>(it->second);
  }
  Result<std::vector<PodObservation>> finishedRunPods(std::string_view /*ns*/,
                                                      std::string_view wfName) override {
    ++podCalls_;
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !blocked_; });
    if (fail_)
      return *fail_;
    return pods_[std::string(wfName)];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false;
  std::optional<Error> fail_;
  std::map<std::string, std::shared_ptr<const Workflow>> workflows_;
  std::map<std::string, std::vector<PodObservation>> pods_;
  std::atomic<int> workflowCalls_{0};
  std::atomic<int> podCalls_{0};
};

// A CA and a serving certificate for 127.0.0.1/localhost written to `dir`.
struct TestCerts {
  std::string dir, caFile, certFile, keyFile;
  PemPair ca;
};

inline TestCerts writeTestCerts(const std::string& dir, const std::string& cn = "webhook-test") {
  std::filesystem::create_directories(dir);
  TestCerts t;
  t.dir = dir;
  auto ca = generateCa(cn + "-ca", std::chrono::hours(24));
  EXPECT_TRUE(ca.ok());
  t.ca = ca.value();
  CertificateRequest req;
  req.commonName = cn;
  req.dnsNames = {"localhost"};
  req.ipAddresses = {"127.0.0.1"};
  req.validity = std::chrono::hours(24);
  auto serving = generateServingCertificate(t.ca, req);
  EXPECT_TRUE(serving.ok());
  t.caFile = dir + "/ca.crt";
  t.certFile = dir + "/tls.crt";
  t.keyFile = dir + "/tls.key";
  EXPECT_TRUE(writeFileAtomic(t.caFile, t.ca.certPem).ok());
  EXPECT_TRUE(writeFileAtomic(t.certFile, serving.value().certPem).ok());
  EXPECT_TRUE(writeFileAtomic(t.keyFile, serving.value().keyPem).ok());
  return t;
}

}  // namespace exitrec::testing
