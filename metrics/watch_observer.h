#pragma once
// WatchMetricsObserver: a k8sclient ReflectorObserver that feeds the watch
// families of Metrics for one resource (exit_reconciler_watch_events_total,
// _watch_restarts_total, _watch_last_activity_timestamp_seconds). Header-only
// so that exitrec_metrics does not link k8sclient. Thread-safe (Metrics is).

#include "k8sclient/reflector.h"
#include "metrics/metrics.h"

namespace exitrec {

class WatchMetricsObserver final : public ReflectorObserver {
 public:
  // `metrics` must outlive the observer.
  WatchMetricsObserver(Metrics& metrics, WatchedResource resource)
      : metrics_(metrics), resource_(resource) {}

  void onWatchRestart(std::string_view, std::string_view reason) override {
    metrics_.watchRestart(resource_, watchRestartReasonOf(reason));
  }
  void onWatchEvent(std::string_view, std::string_view type) override {
    metrics_.watchEvent(resource_, watchEventLabelOf(type));
  }
  void onWatchClosedNormally(std::string_view) override { metrics_.watchActive(resource_); }
  void onListed(std::string_view, std::size_t, std::chrono::milliseconds) override {
    metrics_.watchActive(resource_);
  }

 private:
  Metrics& metrics_;
  WatchedResource resource_;
};

}  // namespace exitrec
