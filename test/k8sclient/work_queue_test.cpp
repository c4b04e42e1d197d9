#include "k8sclient/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/fake_clock.h"
#include "test_util.h"

namespace exitrec {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::waitFor;

TEST(RateLimiterTest, ItemExponentialFailure) {
  ItemExponentialFailureRateLimiter l(milliseconds(5), seconds(1000));
  EXPECT_EQ(l.when("a"), milliseconds(5));
  EXPECT_EQ(l.when("a"), milliseconds(10));
  EXPECT_EQ(l.when("a"), milliseconds(20));
  EXPECT_EQ(l.when("b"), milliseconds(5));  // per item
  EXPECT_EQ(l.numRequeues("a"), 3);
  for (int i = 0; i < 100; ++i)
    (void)l.when("a");
  EXPECT_EQ(l.when("a"), seconds(1000));  // capped, no overflow
  l.forget("a");
  EXPECT_EQ(l.numRequeues("a"), 0);
  EXPECT_EQ(l.when("a"), milliseconds(5));
}

TEST(RateLimiterTest, TokenBucketBurstThenRate) {
  FakeClock clock;
  BucketRateLimiter l(clock, 10.0, 100);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(l.when("k" + std::to_string(i)), nanoseconds(0)) << i;
  EXPECT_EQ(l.when("x"), milliseconds(100));  // 101st token: 1/10 s away
  EXPECT_EQ(l.when("y"), milliseconds(200));  // reservations queue up
  clock.advance(milliseconds(300));           // 3 tokens refilled, 2 owed
  EXPECT_EQ(l.when("z"), nanoseconds(0));
  clock.advance(seconds(100));  // refills to the burst, not beyond
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(l.when("k"), nanoseconds(0));
  EXPECT_GT(l.when("k"), nanoseconds(0));
}

TEST(RateLimiterTest, DefaultControllerIsMaxOfBoth) {
  FakeClock clock;
  auto l = defaultControllerRateLimiter(clock);
  EXPECT_EQ(l->when("a"), milliseconds(5));
  EXPECT_EQ(l->when("a"), milliseconds(10));
  // Exhaust the bucket with other keys: the bucket delay dominates.
  for (int i = 0; i < 98; ++i)
    (void)l->when("k" + std::to_string(i));
  EXPECT_EQ(l->when("fresh"), milliseconds(100));  // bucket 100 ms > item 5 ms
  EXPECT_EQ(l->numRequeues("a"), 2);
  l->forget("a");
  EXPECT_EQ(l->numRequeues("a"), 0);
}

TEST(WorkQueueTest, DedupAndNeverTwoWorkersOnOneKey) {
  FakeClock clock;
  WorkQueue q("t", clock);
  q.add("a");
  q.add("a");
  q.add("b");
  EXPECT_EQ(q.len(), 2u);
  auto k = q.get();
  ASSERT_EQ(*k, "a");
  // While "a" is processing, adding it marks it dirty but does not hand it out.
  q.add("a");
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(*q.get(), "b");
  EXPECT_EQ(q.len(), 0u);
  q.done("b");
  EXPECT_EQ(q.len(), 0u);
  q.done("a");  // re-queued now
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(*q.get(), "a");
  q.done("a");
  EXPECT_EQ(q.len(), 0u);
}

// The delay thread is the clock's only waiter, and its deadline is still ahead.
bool parkedOnFutureDeadline(const FakeClock& clock) {
  return clock.waiterCount() == 1 && clock.dueWaiters() == 0;
}

TEST(WorkQueueTest, AddAfterUsesTheClockAndEarliestWins) {
  FakeClock clock;
  WorkQueue q("t", clock);
  q.addAfter("a", seconds(10));
  q.addAfter("a", seconds(5));   // earlier wins
  q.addAfter("a", seconds(20));  // later ignored
  q.addAfter("now", nanoseconds(0));
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(*q.get(), "now");
  EXPECT_EQ(q.waitingLen(), 1u);
  ASSERT_TRUE(waitFor([&] { return parkedOnFutureDeadline(clock); }));
  clock.advance(seconds(4));
  // Still parked on a deadline ahead of the clock: the item cannot be ready.
  EXPECT_TRUE(parkedOnFutureDeadline(clock));
  EXPECT_EQ(q.len(), 0u);
  clock.advance(seconds(1));
  ASSERT_TRUE(waitFor([&] { return q.len() == 1; }));
  EXPECT_EQ(*q.get(), "a");
  EXPECT_EQ(q.waitingLen(), 0u);
}

TEST(WorkQueueTest, AddRateLimitedBacksOffPerItemAndForgetResets) {
  FakeClock clock;
  WorkQueue q("t", clock);
  q.addRateLimited("a");  // 5 ms
  EXPECT_EQ(q.numRequeues("a"), 1);
  clock.advance(milliseconds(5));
  ASSERT_TRUE(waitFor([&] { return q.len() == 1; }));
  ASSERT_EQ(*q.get(), "a");
  q.done("a");
  q.addRateLimited("a");  // 10 ms
  ASSERT_TRUE(waitFor([&] { return parkedOnFutureDeadline(clock); }));
  clock.advance(milliseconds(9));
  EXPECT_TRUE(parkedOnFutureDeadline(clock));
  EXPECT_EQ(q.len(), 0u);
  clock.advance(milliseconds(1));
  ASSERT_TRUE(waitFor([&] { return q.len() == 1; }));
  q.forget("a");
  EXPECT_EQ(q.numRequeues("a"), 0);
}

TEST(WorkQueueTest, ConcurrentWorkersNeverOverlapOnAKey) {
  FakeClock clock;
  WorkQueue q("t", clock);
  std::mutex mu;
  std::set<std::string> active;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto k = q.get()) {
        {
          std::lock_guard<std::mutex> g(mu);
          if (!active.insert(*k).second)
            overlap = true;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        {
          std::lock_guard<std::mutex> g(mu);
          active.erase(*k);
        }
        ++processed;
        q.done(*k);
      }
    });
  }
  std::thread producer([&] {
    for (int i = 0; i < 2000; ++i)
      q.add("key" + std::to_string(i % 5));
  });
  producer.join();
  q.shutDownWithDrain();
  for (auto& t : workers)
    t.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_GE(processed.load(), 5);     // every key at least once
  EXPECT_LE(processed.load(), 2000);  // bursts collapsed
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueueTest, ShutdownHandsOutQueuedThenStopsAndIgnoresAdds) {
  FakeClock clock;
  WorkQueue q("t", clock);
  q.add("a");
  q.addAfter("later", seconds(1));
  q.shutDown();
  q.add("b");
  EXPECT_TRUE(q.shuttingDown());
  EXPECT_EQ(*q.get(), "a");
  q.done("a");
  EXPECT_FALSE(q.get().has_value());
  clock.advance(seconds(2));
  EXPECT_FALSE(q.get().has_value());
}

TEST(WorkQueueTest, ShutdownWithDrainWaitsForInFlightWork) {
  FakeClock clock;
  WorkQueue q("t", clock);
  q.add("a");
  auto k = q.get();
  ASSERT_TRUE(k.has_value());
  // Order of two observable events: the drain may only return after done().
  std::atomic<int> step{0};
  int drainedAt = -1;
  std::thread t([&] {
    q.shutDownWithDrain();
    drainedAt = step++;
  });
  ASSERT_TRUE(waitFor([&] { return q.shuttingDown(); }));
  EXPECT_FALSE(q.get().has_value());  // shut down: nothing more handed out
  const int doneAt = step++;
  q.done(*k);
  t.join();
  EXPECT_GT(drainedAt, doneAt) << "shutDownWithDrain returned while work was in flight";
}

class CountingObserver : public WorkQueueObserver {
 public:
  void onAdd(std::string_view) override { ++adds; }
  void onDepth(std::string_view, std::size_t d) override { depth = d; }
  void onQueueLatency(std::string_view, nanoseconds n) override { latency = n; }
  void onWorkDuration(std::string_view, nanoseconds n) override { work = n; }
  void onRetry(std::string_view) override { ++retries; }
  std::atomic<int> adds{0}, retries{0};
  std::atomic<std::size_t> depth{0};
  nanoseconds latency{0}, work{0};
};

TEST(WorkQueueTest, ObserverSeesAddsDepthLatencyDurationRetries) {
  FakeClock clock;
  CountingObserver obs;
  WorkQueue q("t", clock, nullptr, &obs);
  q.add("a");
  q.add("b");
  EXPECT_EQ(obs.adds.load(), 2);
  EXPECT_EQ(obs.depth.load(), 2u);
  clock.advance(milliseconds(250));
  auto k = q.get();
  EXPECT_EQ(obs.latency, milliseconds(250));
  EXPECT_EQ(obs.depth.load(), 1u);
  clock.advance(milliseconds(40));
  EXPECT_EQ(q.longestRunningProcessor(), milliseconds(40));
  q.done(*k);
  EXPECT_EQ(obs.work, milliseconds(40));
  q.addRateLimited("c");
  EXPECT_EQ(obs.retries.load(), 1);
}

}  // namespace
}  // namespace exitrec
