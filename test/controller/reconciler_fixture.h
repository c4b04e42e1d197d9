#pragma once
// The Reconciler fixture shared by reconciler_test.cpp,
// reconciler_kfp_safety_test.cpp and reconciler_reverify_test.cpp: the
// Reconciler over fakes (test/controller/fakes.h) on synthetic KFP runs
// evaluated by the real engine.

#include <gtest/gtest.h>

#include "common/fake_clock.h"
#include "controller/annotations.h"
#include "controller/reconciler.h"
#include "controller/workflow_record.h"
#include "sim/kfp/kfp_run_factory.h"
#include "test/controller/fakes.h"

namespace exitrec::reconciler_test {

using Kind = ReconcileOutcome::Kind;
// What a pass that leaves a correction verified in KFP returns: the key comes
// back after kKfpReverifyDelay to read KFP's state once more.
constexpr Kind kAwaitsReverify = Kind::kRequeueAfter;
using nlohmann::json;
using testing::FakeEvents;
using testing::FakeKfp;
using testing::FakeWorkflowApi;

inline const std::string kNs = "kubeflow";

inline std::string annotation(const json& obj, std::string_view key) {
  const json& a = obj["metadata"]["annotations"];
  auto it = a.find(std::string(key));
  return it == a.end() ? "" : it->get<std::string>();
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kfp_.cluster = &api_;
    rebuild();
  }
  // Whatever a test did: KFP never deleted a Workflow, and no reported body
  // carried the label that makes it do so.
  void TearDown() override {
    EXPECT_EQ(kfp_.reportsWithFinalStateLabel, 0);
    EXPECT_TRUE(kfp_.deleted.empty()) << kfp_.deleted.front();
    for (const json& body : kfp_.reported)
      EXPECT_FALSE(body["metadata"]["labels"].contains(std::string(lbl::kPersistedFinalState)));
  }
  void rebuild() {
    reconciler_ = std::make_unique<Reconciler>(api_, &kfp_, events_, clock_, config_, &observer_);
  }
  // A run as the cluster holds it a second after completion: KFP created the
  // run (it knows the id), and its persistence agent reported the run, which
  // made the API server label the Workflow pipeline/persistedFinalState.
  std::string add(KfpRunSpec spec, bool knownToKfp = true) {
    json wf = json::parse(makeKfpRunJson(spec));
    const json& labels = wf["metadata"]["labels"];
    const bool completed = labels.value(std::string(lbl::kCompleted), "") == "true";
    if (labels.contains(std::string(lbl::kRunId))) {
      const std::string runId = labels[std::string(lbl::kRunId)];
      if (knownToKfp)
        kfp_.states[runId] = completed ? "SUCCEEDED" : "RUNNING";
      if (completed)
        wf["metadata"]["labels"][std::string(lbl::kPersistedFinalState)] = "true";
    }
    api_.put(wf.dump());
    return spec.name;
  }
  std::string runId(const std::string& name) {
    return object(name)["metadata"]["labels"][std::string(lbl::kRunId)];
  }
  ReconcileOutcome reconcile(const std::string& name) { return reconciler_->reconcile(kNs, name); }
  json object(const std::string& name) { return api_.object(kNs, name); }

  struct CountingObserver : ReconcileObserver {
    void onVerdict(const Verdict& v) override {
      ++verdicts;
      if (v.misreported)
        ++misreported;
    }
    void onStep(StepKind kind, std::string_view, std::string_view result) override {
      steps.push_back(std::string(stepKindName(kind)) + ":" + std::string(result));
    }
    void onReportVerified(std::optional<std::chrono::duration<double>> latency) override {
      ++verified;
      lastLatency = latency;
    }
    void onKfpEndpointMissing(std::string_view operation) override {
      endpointMissing.push_back(std::string(operation));
    }
    void onKfpRunUnknown() override { ++unknownRuns; }
    void onKfpStateRegressed() override { ++regressions; }
    int regressions = 0;
    std::vector<std::string> endpointMissing;
    int unknownRuns = 0;
    int verdicts = 0, misreported = 0, verified = 0;
    std::optional<std::chrono::duration<double>> lastLatency;
    std::vector<std::string> steps;
  };

  FakeWorkflowApi api_;
  FakeKfp kfp_;
  FakeEvents events_;
  FakeClock clock_;
  CorrectionConfig config_;
  CountingObserver observer_;
  std::unique_ptr<Reconciler> reconciler_;
};

inline KfpRunSpec masked(std::string name) {
  KfpRunSpec s;
  s.shape = RunShape::kV2Sibling;
  s.name = std::move(name);
  s.bodyFails = true;
  return s;
}

}  // namespace exitrec::reconciler_test
