#pragma once
// What the pod-annotation controller reports, as a small interface of its
// own (as controller/controller_metrics.h is for the workflow controller).
// The Prometheus implementation lives in controller/metrics_bridge.cpp, the
// only file that includes metrics/metrics.h. Defaults are no-ops.
//
// Thread-safety: implementations must be thread-safe (pod workers, the
// reflector thread).

#include "webhook/webhook_metrics.h"

namespace exitrec {

class ReflectorObserver;  // k8sclient/reflector.h

class PodAnnotationMetrics {
 public:
  virtual ~PodAnnotationMetrics() = default;
  // One handled pod: exit_reconciler_injections_total{channel="annotation", result}.
  virtual void injection(InjectionResult /*result*/) {}
  // The observer of the pods watch (exit_reconciler_watch_*{resource="pods"});
  // null: the watch is not observed. Lives as long as this object.
  virtual ReflectorObserver* watchObserver() { return nullptr; }
};

}  // namespace exitrec
