#pragma once
// ControllerMetrics: the metrics the controller runtime reports, as a small
// interface of its own. Every component reports through one like it
// (TransportObserver, WebhookMetrics, PodAnnotationMetrics,
// HistorySweepMetrics); their Prometheus implementations (metrics_bridge.cpp,
// behind MetricsEndpoint) are the only code that includes metrics/metrics.h,
// so no component sees prometheus-cpp or the Metrics class. Tests and the
// sandbox can pass nullptr-backed no-ops.
//
// Thread-safety: implementations must be thread-safe (called from workers,
// the reflector thread and the elector thread).

#include <memory>
#include <string>
#include <string_view>

#include "controller/reconciler.h"
#include "controller/workflow_record.h"

namespace exitrec {

class HistorySweepMetrics;   // controller/history_sweep.h
class PodAnnotationMetrics;  // controller/pod_annotations/pod_annotation_metrics.h
class TransportObserver;     // k8sclient/metered_transport.h
class WebhookMetrics;        // webhook/webhook_metrics.h

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
  // APIs (Kubernetes requests: MetricsEndpoint::transportObserver()).
  virtual void kfpRequest(std::string_view /*operation*/, int /*status*/, double /*seconds*/) {}
  virtual void leader(bool /*leading*/) {}
};

// Owns the Prometheus registry (Metrics), each component's view of it and
// the /metrics server on `address` (serve()/stopServing(), a Runnable's
// pair). Keeps metrics/metrics.h out of its users.
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

  // The components' views, owned by this endpoint and valid while it lives.
  ControllerMetrics& metrics() { return *view_; }
  TransportObserver& transportObserver();  // exit_reconciler_kube_api_request*
  WebhookMetrics& webhookMetrics();
  PodAnnotationMetrics& podAnnotationMetrics();
  HistorySweepMetrics& historySweepMetrics();
  int port() const;
  std::string exposition() const;

 private:
  MetricsEndpoint();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ControllerMetrics* view_ = nullptr;
};

}  // namespace exitrec
