// The reflector's hooks land in the watch families of the right resource
// (the pods watch feeds the same metrics as the workflows watch).

#include "metrics/watch_observer.h"

#include <gtest/gtest.h>

#include "common/fake_clock.h"
#include "test/metrics/exposition.h"

namespace exitrec {
namespace {

using testing::parseExposition;

TEST(WatchMetricsObserver, BookmarksErrorsStallsAndNormalEndsReachThePodsSeries) {
  FakeClock clock;
  MetricsOptions options;
  options.clock = &clock;
  Metrics m(options);
  WatchMetricsObserver pods(m, WatchedResource::kPods);
  pods.onWatchEvent("pods", "BOOKMARK");
  pods.onWatchEvent("pods", "BOOKMARK");
  pods.onWatchEvent("pods", "ERROR");
  pods.onWatchRestart("pods", "idle_timeout");
  pods.onWatchRestart("pods", "gone_event");
  pods.onWatchRestart("pods", "short_watch");
  auto e = parseExposition(m.exposition());
  auto events = [&](const char* type) {
    return e.value("exit_reconciler_watch_events_total", {{"resource", "pods"}, {"type", type}});
  };
  auto restarts = [&](const char* reason) {
    return e.value("exit_reconciler_watch_restarts_total",
                   {{"resource", "pods"}, {"reason", reason}});
  };
  EXPECT_EQ(events("BOOKMARK"), 2.0);
  EXPECT_EQ(events("ERROR"), 1.0);
  EXPECT_EQ(restarts("stalled"), 1.0);
  EXPECT_EQ(restarts("expired"), 1.0);
  EXPECT_EQ(restarts("error"), 1.0);
  EXPECT_EQ(restarts("closed"), 0.0);
  EXPECT_EQ(e.value("exit_reconciler_watch_events_total",
                    {{"resource", "workflows"}, {"type", "BOOKMARK"}}),
            0.0);

  // A normal end is activity without an event.
  clock.advance(std::chrono::seconds(90));
  pods.onWatchClosedNormally("pods");
  pods.onWatchRestart("pods", "closed");
  e = parseExposition(m.exposition());
  EXPECT_EQ(
      e.value("exit_reconciler_watch_last_activity_timestamp_seconds", {{"resource", "pods"}}),
      std::chrono::duration<double>(clock.wallNow().time_since_epoch()).count());
  EXPECT_EQ(restarts("closed"), 1.0);
}

}  // namespace
}  // namespace exitrec
