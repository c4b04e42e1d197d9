// Watch streams, by resource: exit_reconciler_watch_restarts_total,
// _watch_events_total and _watch_last_activity_timestamp_seconds.

#include <chrono>

#include "common/clock.h"
#include "metrics/metrics_internal.h"

namespace exitrec {
namespace metrics_internal {

void WatchFamilies::registerIn(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  watchRestarts = &build(BuildCounter(), "exit_reconciler_watch_restarts_total",
                         "Watch streams restarted, by resource and reason.");
  watchEvents = &build(BuildCounter(), "exit_reconciler_watch_events_total",
                       "Watch events received, by resource and type.");
  watchActivity =
      &build(BuildGauge(), "exit_reconciler_watch_last_activity_timestamp_seconds",
             "Unix time of the last watch event, bookmark or successful list, by resource "
             "(0 = not watched).");
  forEach<WatchedResource, 2>([&](WatchedResource r) {
    watchActivityG[idx(r)] = &watchActivity->Add({{"resource", str(labelValue(r))}});
    forEach<WatchRestartReason, 4>([&](WatchRestartReason why) {
      watchRestartC[idx(r)][idx(why)] =
          &watchRestarts->Add({{"resource", str(labelValue(r))}, {"reason", str(labelValue(why))}});
    });
    forEach<WatchEventLabel, 5>([&](WatchEventLabel t) {
      watchEventC[idx(r)][idx(t)] =
          &watchEvents->Add({{"resource", str(labelValue(r))}, {"type", str(labelValue(t))}});
    });
  });
}

}  // namespace metrics_internal

using metrics_internal::idx;

void Metrics::watchRestart(WatchedResource resource, WatchRestartReason reason) {
  impl_->watch.watchRestartC[idx(resource)][idx(reason)]->Increment();
}

void Metrics::watchEvent(WatchedResource resource, WatchEventLabel type) {
  impl_->watch.watchEventC[idx(resource)][idx(type)]->Increment();
  watchActive(resource);
}

void Metrics::watchActive(WatchedResource resource) {
  auto now = impl_->clock->wallNow().time_since_epoch();
  impl_->watch.watchActivityG[idx(resource)]->Set(std::chrono::duration<double>(now).count());
}

}  // namespace exitrec
