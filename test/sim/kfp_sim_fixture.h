#pragma once
// A Kubernetes API simulator and a KFP API simulator wired to it (KFP's
// workflow client), in-process, with a FakeClock for KFP's time and no
// backoff waits, for the KFP simulator and persistence-agent tests.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/fake_clock.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kube_api_simulator.h"

namespace exitrec::kfpsimtest {

using nlohmann::json;
using namespace std::chrono_literals;

inline constexpr const char* kNs = "kubeflow";

// Polls an observable condition (no fixed sleeps in assertions).
inline bool waitFor(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// A KFP-created Workflow: labelled with its run id, created in the past.
inline json kfpWorkflow(const std::string& name, const std::string& phase,
                        const std::string& runId = "") {
  json wf = {{"apiVersion", "argoproj.io/v1alpha1"},
             {"kind", "Workflow"},
             {"metadata",
              {{"name", name},
               {"namespace", kNs},
               {"creationTimestamp", "2026-11-28T10:00:00Z"},
               {"labels", {{"pipeline/runid", runId.empty() ? "run-" + name : runId}}}}},
             {"spec", {{"entrypoint", "main"}}},
             {"status", {{"phase", phase}, {"startedAt", "2026-11-28T10:00:00Z"}}}};
  if (phase == "Succeeded" || phase == "Failed" || phase == "Error")
    wf["status"]["finishedAt"] = "2026-11-28T10:05:00Z";
  return wf;
}

class KfpSimCluster {
 public:
  void setUp(KfpVersion version, GatewayErrors errors = GatewayErrors::kAuto) {
    KubeApiSimulator::Options ko;
    ko.bookmarkInterval = 200ms;
    kube_ = std::make_unique<KubeApiSimulator>(ko);
    ASSERT_TRUE(kube_->start().ok());
    ASSERT_TRUE(
        kube_
            ->seed(json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}})
            .ok());
    KfpApiSimulator::Options o;
    o.version = version;
    o.gatewayErrors = errors;
    o.kubeApiUrl = kube_->baseUrl();
    o.clock = &clock_;
    o.backoffInitial = 0ms;
    o.backoffMax = 0ms;
    kfp_ = std::make_unique<KfpApiSimulator>(o);
    ASSERT_TRUE(kfp_->start().ok());
    auto t = makeCpprestTransport(TlsOptions{});
    ASSERT_TRUE(t.ok());
    client_ = std::make_unique<KubeClient>(std::shared_ptr<HttpTransport>(std::move(t).value()),
                                           kube_->baseUrl(), TokenSource());
  }
  void tearDown() {
    if (kfp_)
      kfp_->stop();
    if (kube_)
      kube_->stop();
  }

  // KFP's CreateRun with the Workflow; returns the live CR.
  json createRun(const json& wf) {
    KfpApiSimulator::CreateRunRequest req;
    req.runId = wf["metadata"]["labels"]["pipeline/runid"];
    req.workflow = wf;
    auto r = kfp_->createRun(req);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
    return live(wf["metadata"]["name"]);
  }
  // A Workflow KFP never created a run for.
  json seed(const json& wf) {
    EXPECT_TRUE(kube_->seed(wf).ok());
    return live(wf["metadata"]["name"]);
  }
  json live(const std::string& name) {
    auto r = client_->get(resources::kWorkflows, kNs, name);
    return r ? *r : json();
  }
  bool exists(const std::string& name) { return live(name).is_object(); }
  // The API server answers NotFound (not merely an unreadable answer).
  bool gone(const std::string& name) {
    auto r = client_->get(resources::kWorkflows, kNs, name);
    if (!r && r.error().code != ErrorCode::kNotFound)
      ADD_FAILURE() << "GET " << name << ": " << r.error().describe();
    return !r && r.error().code == ErrorCode::kNotFound;
  }
  // POST /apis/v1beta1/workflows with the Workflow as the body's string.
  KfpApiSimulator::Response report(const json& wf) {
    return kfp_->handle("POST", "/apis/v1beta1/workflows", std::nullopt, json(wf.dump()).dump());
  }
  std::string runState(const std::string& runId) {
    auto r = kfp_->run(runId);
    return r ? r->state : "<no run>";
  }
  // Requests with `verb` on workflow `name` in the kube simulator's log.
  int mutations(const std::string& verb, const std::string& name) {
    int n = 0;
    for (const auto& m : kube_->mutationLog()) {
      n += m.verb == verb && m.path.size() > name.size() &&
           m.path.compare(m.path.size() - name.size() - 1, name.size() + 1, "/" + name) == 0;
    }
    return n;
  }
  bool labelled(const std::string& name) {
    json wf = live(name);
    return wf.is_object() && wf["metadata"]["labels"].contains("pipeline/persistedFinalState");
  }

  FakeClock clock_;
  std::unique_ptr<KubeApiSimulator> kube_;
  std::unique_ptr<KfpApiSimulator> kfp_;
  std::unique_ptr<KubeClient> client_;
};

}  // namespace exitrec::kfpsimtest
