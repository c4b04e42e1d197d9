#include "common/result.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/fake_clock.h"

namespace exitrec {
namespace {

Result<int> parsePositive(int v) {
  if (v <= 0)
    return makeError(ErrorCode::kInvalidInput, "value must be positive, got " + std::to_string(v));
  return v;
}

TEST(ResultTest, HoldsValueOrError) {
  auto good = parsePositive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  auto bad = parsePositive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(bad.error().describe(), "InvalidInput: value must be positive, got -1");
}

TEST(ResultTest, RetryableClassification) {
  EXPECT_TRUE(Error(ErrorCode::kTransient, "x").retryable());
  EXPECT_TRUE(Error(ErrorCode::kConflict, "x").retryable());
  EXPECT_FALSE(Error(ErrorCode::kForbidden, "x").retryable());
  EXPECT_FALSE(Error(ErrorCode::kInvalid, "x").retryable());
}

TEST(ResultDeathTest, WrongAlternativeAborts) {
  auto bad = parsePositive(0);
  EXPECT_DEATH({ (void)bad.value(); }, "");
}

TEST(FakeClockTest, AdvanceWakesWaiter) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  const auto deadline = clock.now() + std::chrono::seconds(30);
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_FALSE(clock.waitUntil(lock, cv, deadline, [] { return false; }));
  });
  while (clock.waiterCount() == 0)
    std::this_thread::yield();
  clock.advance(std::chrono::seconds(31));
  waiter.join();
  EXPECT_GE(clock.now(), deadline);
}

TEST(ClockTest, FormatsRfc3339) {
  EXPECT_EQ(formatRfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(0))),
            "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace exitrec
