#include "runtime/stop_source.h"

#include <gtest/gtest.h>

namespace exitrec {
namespace {

TEST(StopSource, RunsSubscribersOnceWithTheFirstReason) {
  StopSource source;
  int calls = 0;
  source.subscribe([&] { ++calls; });
  EXPECT_FALSE(source.stopRequested());
  source.requestStop("first");
  source.requestStop("second");
  EXPECT_TRUE(source.stopRequested());
  EXPECT_EQ(source.reason(), "first");
  EXPECT_EQ(calls, 1);
}

TEST(StopSource, SubscribingAfterTheRequestRunsAtOnce) {
  StopSource source;
  source.requestStop("early");
  int calls = 0;
  source.subscribe([&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(StopSource, UnsubscribedCallbackIsNotRun) {
  StopSource source;
  int kept = 0;
  int dropped = 0;
  source.subscribe([&] { ++kept; });
  const int id = source.subscribe([&] { ++dropped; });
  source.unsubscribe(id);
  source.requestStop("stop");
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(dropped, 0);
}

}  // namespace
}  // namespace exitrec
