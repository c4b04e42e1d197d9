#include "runtime/signals.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

namespace exitrec {
namespace {

// ctest runs each test in its own process, so the watcher is created before
// any other thread of this process exists (its contract).
TEST(SignalWatcher, DeliversSigtermToTheCallbackInsteadOfKilling) {
  std::mutex mu;
  std::condition_variable cv;
  std::string got;
  auto watcher = SignalWatcher::start([&](const std::string& name) {
    std::lock_guard<std::mutex> g(mu);
    got = name;
    cv.notify_all();
  });
  ASSERT_TRUE(watcher) << watcher.error().describe();
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return !got.empty(); });
  EXPECT_EQ(got, "SIGTERM");
}

TEST(SignalWatcher, DeliversSigint) {
  std::mutex mu;
  std::condition_variable cv;
  std::string got;
  auto watcher = SignalWatcher::start([&](const std::string& name) {
    std::lock_guard<std::mutex> g(mu);
    got = name;
    cv.notify_all();
  });
  ASSERT_TRUE(watcher) << watcher.error().describe();
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return !got.empty(); });
  EXPECT_EQ(got, "SIGINT");
}

TEST(SignalWatcher, SecondSignalExitsAtOnceWithStatusOne) {
  EXPECT_EXIT(
      {
        std::mutex mu;
        std::condition_variable cv;
        int calls = 0;
        auto watcher = SignalWatcher::start([&](const std::string&) {
          std::lock_guard<std::mutex> g(mu);
          ++calls;
          cv.notify_all();
        });
        if (!watcher)
          std::_Exit(3);
        kill(getpid(), SIGTERM);
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return calls == 1; });
        }
        kill(getpid(), SIGTERM);
        // The watcher's thread ends the process; this thread waits for it.
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return calls == 2; });
        std::_Exit(4);
      },
      ::testing::ExitedWithCode(1), "");
}

}  // namespace
}  // namespace exitrec
