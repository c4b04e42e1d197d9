#pragma once
// What the exit-task injection reports, as small interfaces of its own (as
// controller/controller_metrics.h is for the controller): the Prometheus
// implementations live in controller/metrics_bridge.cpp, the only file that
// includes metrics/metrics.h. The webhook and the pod-annotation controller
// never see prometheus-cpp or the Metrics class. Defaults are no-ops.
//
// Thread-safety: implementations must be thread-safe (HTTP server threads,
// decision workers, pod workers).

#include <cstdint>

namespace exitrec {

// What became of one pod (exported as label `result` of
// exit_reconciler_injections_total).
enum class InjectionResult : std::uint8_t {
  kInjected,          // values injected
  kAlreadyInjected,   // the pod already carries them
  kSkipped,           // in scope, nothing to inject (e.g. a driver pod)
  kOutOfScope,        // not an exit-task pod; allowed unchanged
  kDeadlineExceeded,  // allowed unchanged past the deadline
  kApiUnavailable,    // could not read the Workflow; allowed unchanged
  kBadRequest,        // malformed AdmissionReview, answered 400
  kError,             // any other failure; allowed unchanged
};
inline constexpr int kInjectionResults = 8;

// The admission webhook's metrics.
class WebhookMetrics {
 public:
  virtual ~WebhookMetrics() = default;
  // One answered review, `seconds` after it arrived:
  // exit_reconciler_injections_total{channel="webhook", result} and
  // exit_reconciler_webhook_duration_seconds{scope}.
  virtual void reviewed(InjectionResult /*result*/, bool /*inScope*/, double /*seconds*/) {}
  // The serving certificate was (re)loaded: ok, and its notAfter (Unix
  // seconds) when it could be read.
  virtual void certificateLoaded(bool /*ok*/, double /*notAfterUnixSeconds*/) {}
};

}  // namespace exitrec
