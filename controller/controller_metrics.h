#pragma once
// ControllerMetrics: the metrics the controller runtime reports, as a small
// interface of its own. The Prometheus implementation (metrics_bridge.cpp) is
// the only controller file that includes metrics/metrics.h; the runtime never
// sees prometheus-cpp or the Metrics class. Tests and the sandbox can pass
// nullptr-backed no-ops.
//
// Thread-safety: implementations must be thread-safe (called from workers,
// the reflector thread and the elector thread).

#include <memory>
#include <string>
#include <string_view>

#include "controller/reconciler.h"
#include "controller/workflow_record.h"

namespace exitrec {

class Metrics;
class HistorySweepMetrics;  // controller/history_sweep.h

class ControllerMetrics : public ReconcileObserver {
 public:
  // A completed run seen for the first time in this process.
  virtual void runSeen(const WorkflowRecord& /*record*/) {}
  virtual void trackedWorkflows(std::size_t /*count*/) {}
  // A run skipped as hostile or broken (once per resourceVersion); reason is
  // one of the kReject* labels of controller/workflow_record.h.
  virtual void objectRejected(std::string_view /*reason*/) {}
  // Corrected runs waiting for KFP's persistence agent to re-report them.
  virtual void runsAwaitingPersistenceAgent(std::int64_t /*count*/) {}
  // Watch machinery: reason as in ReflectorObserver; type "ADDED" etc.
  virtual void watchRestart(std::string_view /*reason*/) {}
  virtual void watchEvent(std::string_view /*type*/) {}
  virtual void listed() {}
  // The server closed a quiet watch normally: activity without an event.
  virtual void watchActive() {}
  // Work queue.
  virtual void queueAdd() {}
  virtual void queueDepth(std::size_t /*depth*/) {}
  virtual void queueLatency(double /*seconds*/) {}
  virtual void workDuration(double /*seconds*/) {}
  virtual void queueRetry() {}
  virtual void queueGauges(double /*unfinishedSeconds*/, double /*longestSeconds*/) {}
  virtual void reconciled(ReconcileOutcome::Kind /*kind*/, double /*seconds*/) {}
  virtual void workers(int /*active*/, int /*max*/) {}
  // APIs.
  virtual void kubeRequest(std::string_view /*verb*/, std::string_view /*resource*/, int /*status*/,
                           double /*seconds*/) {}
  virtual void kfpRequest(std::string_view /*operation*/, int /*status*/, double /*seconds*/) {}
  virtual void leader(bool /*leading*/) {}
};

// Backed by the deploy module's Metrics (must outlive the returned object).
std::unique_ptr<ControllerMetrics> makePrometheusControllerMetrics(Metrics& metrics,
                                                                   ExitTaskFailurePolicy policy);

// The run-history sweep's counters (exit_reconciler_history_*), backed by
// `metrics` (must outlive the returned object).
std::unique_ptr<HistorySweepMetrics> makePrometheusHistorySweepMetrics(Metrics& metrics);

// Owns the Prometheus registry (Metrics), its ControllerMetrics view and the
// /metrics server on `address` (serve()/stopServing(), a Runnable's pair). Keeps metrics/metrics.h
// out of its users.
class MetricsEndpoint {
 public:
  struct Options {
    std::string address = ":8080";
    std::string leaseName = "kfp-exit-reconciler";
    bool namespaceLabel = false;
    ExitTaskFailurePolicy exitTaskFailure = ExitTaskFailurePolicy::kIgnore;
  };
  // The registry and its view; nothing is served until serve().
  static std::unique_ptr<MetricsEndpoint> create(const Options& options);
  // Serves /metrics on options.address. Errors: a bad address or a port in
  // use, naming the address.
  Status serve();
  void stopServing();
  ~MetricsEndpoint();

  ControllerMetrics& metrics() { return *view_; }
  // The underlying registry wrapper, for components that record their own
  // families (the webhook). Owned by this endpoint; valid while it lives.
  Metrics& registry();
  int port() const;
  std::string exposition() const;

 private:
  MetricsEndpoint();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ControllerMetrics* view_ = nullptr;
};

}  // namespace exitrec
