#include "runtime/manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/fake_clock.h"

namespace exitrec {
namespace {

// Everything the runnables and the election do, in order.
class Log {
 public:
  void add(std::string s) {
    std::lock_guard<std::mutex> g(mu_);
    entries_.push_back(std::move(s));
    cv_.notify_all();
  }
  std::vector<std::string> entries() const {
    std::lock_guard<std::mutex> g(mu_);
    return entries_;
  }
  // Blocks until `s` was logged (an observable event, not a sleep), or until
  // close(): a run that returned early must fail the test, not hang it.
  bool waitFor(const std::string& s) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
      return closed_ || std::find(entries_.begin(), entries_.end(), s) != entries_.end();
    });
    return std::find(entries_.begin(), entries_.end(), s) != entries_.end();
  }
  void close() {
    std::lock_guard<std::mutex> g(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  bool closed() const {
    std::lock_guard<std::mutex> g(mu_);
    return closed_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> entries_;
  bool closed_ = false;
};

class FakeRunnable final : public Runnable {
 public:
  FakeRunnable(std::string name, Log& log) : name_(std::move(name)), log_(log) {}
  std::string_view name() const override { return name_; }
  Status start() override {
    log_.add("start " + name_);
    if (failStart)
      return Error(ErrorCode::kInvalidInput, "port in use");
    return Status();
  }
  bool stop(Clock::SteadyTime) override {
    log_.add("stop " + name_);
    return drains;
  }
  bool failStart = false;
  bool drains = true;

 private:
  std::string name_;
  Log& log_;
};

// An Election driven by the test: it calls the callbacks itself, from its own
// thread as the real elector does.
class FakeElection final : public Election {
 public:
  explicit FakeElection(Log& log) : log_(log) {}
  Status start(std::function<void()> started, std::function<void()> stopped) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      started_ = std::move(started);
      stopped_ = std::move(stopped);
    }
    log_.add("election start");  // the driver reads the callbacks after this
    return Status();
  }
  void stop() override { log_.add("election stop"); }
  std::optional<Clock::SteadyTime> leadingUntil() const override {
    std::lock_guard<std::mutex> g(mu_);
    return until_;
  }
  void lead(std::optional<Clock::SteadyTime> until) {
    std::function<void()> started;
    {
      std::lock_guard<std::mutex> g(mu_);
      until_ = until;
      started = started_;
    }
    std::thread([&started] { started(); }).join();
  }
  void extend(Clock::SteadyTime until) {
    std::lock_guard<std::mutex> g(mu_);
    until_ = until;
  }
  void lose() {
    std::function<void()> stopped;
    {
      std::lock_guard<std::mutex> g(mu_);
      until_.reset();
      stopped = stopped_;
    }
    std::thread([&stopped] { stopped(); }).join();
  }

 private:
  Log& log_;
  mutable std::mutex mu_;
  std::optional<Clock::SteadyTime> until_;
  std::function<void()> started_;
  std::function<void()> stopped_;
};

using Kind = Manager::Result::Kind;

struct ManagerTest : ::testing::Test {
  FakeClock clock;
  Log log;
  StopSource stop;
  FakeRunnable metrics{"metrics", log};
  FakeRunnable informer{"informer", log};
  FakeRunnable workers{"workers", log};
  FakeRunnable pods{"pods", log};

  void addAll(Manager& m) {
    m.add(metrics, Manager::Scope::kAlways);
    m.add(workers, Manager::Scope::kLeaderOnly);
    m.add(informer, Manager::Scope::kAlways);
    m.add(pods, Manager::Scope::kLeaderOnly);
  }
};

TEST_F(ManagerTest, WithoutElectionStartsInOrderAndStopsInReverse) {
  Manager m(clock, nullptr, std::chrono::seconds(5));
  addAll(m);
  std::thread stopper([&] {
    log.waitFor("start pods");
    stop.requestStop("test");
  });
  const Manager::Result r = m.run(stop);
  log.close();
  stopper.join();
  EXPECT_EQ(r.kind, Kind::kStopped);
  EXPECT_EQ(r.reason, "test");
  EXPECT_TRUE(r.drained);
  EXPECT_EQ(log.entries(), (std::vector<std::string>{
                               "start metrics", "start informer", "start workers", "start pods",
                               "stop pods", "stop workers", "stop informer", "stop metrics"}));
}

TEST_F(ManagerTest, LeaderOnlyRunnablesWaitForLeadershipAndStopBeforeTheRelease) {
  FakeElection election(log);
  Manager m(clock, &election, std::chrono::seconds(5));
  addAll(m);
  std::thread driver([&] {
    log.waitFor("election start");
    EXPECT_FALSE(m.leading());
    election.lead(clock.now() + std::chrono::seconds(10));
    log.waitFor("start pods");
    stop.requestStop("SIGTERM");
  });
  const Manager::Result r = m.run(stop);
  log.close();
  driver.join();
  EXPECT_EQ(r.kind, Kind::kStopped);
  EXPECT_EQ(log.entries(),
            (std::vector<std::string>{"start metrics", "start informer", "election start",
                                      "start workers", "start pods", "stop pods", "stop workers",
                                      "election stop", "stop informer", "stop metrics"}));
  EXPECT_FALSE(m.leading());
}

TEST_F(ManagerTest, StopBeforeLeadingNeverStartsLeaderOnlyWork) {
  FakeElection election(log);
  Manager m(clock, &election, std::chrono::seconds(5));
  addAll(m);
  std::thread driver([&] {
    log.waitFor("election start");
    stop.requestStop("SIGINT");
  });
  const Manager::Result r = m.run(stop);
  log.close();
  driver.join();
  EXPECT_EQ(r.kind, Kind::kStopped);
  EXPECT_EQ(log.entries(),
            (std::vector<std::string>{"start metrics", "start informer", "election start",
                                      "election stop", "stop informer", "stop metrics"}));
}

TEST_F(ManagerTest, ElectorGivingUpIsLeadershipLostWithoutAnyStop) {
  FakeElection election(log);
  Manager m(clock, &election, std::chrono::seconds(5));
  addAll(m);
  std::thread driver([&] {
    log.waitFor("election start");
    election.lead(clock.now() + std::chrono::seconds(10));
    log.waitFor("start pods");
    election.lose();
  });
  const Manager::Result r = m.run(stop);
  log.close();
  driver.join();
  EXPECT_EQ(r.kind, Kind::kLeadershipLost);
  EXPECT_FALSE(r.drained);
  // No graceful stop: the caller exits the process (controller-runtime's
  // behaviour on an unintended loss).
  EXPECT_EQ(log.entries().back(), "start pods");
}

TEST_F(ManagerTest, LeaseDeadlinePassingWithoutRenewalIsLeadershipLost) {
  FakeElection election(log);
  Manager m(clock, &election, std::chrono::seconds(5));
  addAll(m);
  std::thread driver([&] {
    log.waitFor("election start");
    election.lead(clock.now() + std::chrono::seconds(10));
    log.waitFor("start pods");
    // The elector hangs in a renewal: no callback, the deadline just passes.
    clock.advance(std::chrono::seconds(10));
  });
  const Manager::Result r = m.run(stop);
  log.close();
  driver.join();
  EXPECT_EQ(r.kind, Kind::kLeadershipLost);
  EXPECT_EQ(r.reason, "lease not renewed by its deadline");
}

TEST_F(ManagerTest, RenewedLeaseKeepsLeadingPastTheOldDeadline) {
  FakeElection election(log);
  Manager m(clock, &election, std::chrono::seconds(5));
  addAll(m);
  std::thread driver([&] {
    log.waitFor("election start");
    election.lead(clock.now() + std::chrono::seconds(10));
    log.waitFor("start pods");
    // Wait until the manager waits on the first deadline, renew, pass it.
    while (clock.waiterCount() == 0 && !log.closed())
      std::this_thread::yield();
    const std::size_t waits = clock.waitsStarted();
    election.extend(clock.now() + std::chrono::seconds(20));
    clock.advance(std::chrono::seconds(10));
    // The manager re-read the deadline and waits again: it is still leading.
    while (clock.waitsStarted() == waits && !log.closed())
      std::this_thread::yield();
    EXPECT_TRUE(m.leading());
    stop.requestStop("test");
  });
  const Manager::Result r = m.run(stop);
  log.close();
  driver.join();
  EXPECT_EQ(r.kind, Kind::kStopped);
}

TEST_F(ManagerTest, FailedStartStopsWhatStartedAndNamesTheRunnable) {
  informer.failStart = true;
  Manager m(clock, nullptr, std::chrono::seconds(5));
  addAll(m);
  const Manager::Result r = m.run(stop);
  EXPECT_EQ(r.kind, Kind::kStartFailed);
  EXPECT_NE(r.reason.find("informer: port in use"), std::string::npos) << r.reason;
  EXPECT_EQ(log.entries(),
            (std::vector<std::string>{"start metrics", "start informer", "stop metrics"}));
}

TEST_F(ManagerTest, FailedLeaderOnlyStartShutsEverythingDown) {
  pods.failStart = true;
  FakeElection election(log);
  Manager m(clock, &election, std::chrono::seconds(5));
  addAll(m);
  std::thread driver([&] {
    log.waitFor("election start");
    election.lead(clock.now() + std::chrono::seconds(10));
  });
  const Manager::Result r = m.run(stop);
  log.close();
  driver.join();
  EXPECT_EQ(r.kind, Kind::kStartFailed);
  EXPECT_EQ(log.entries(),
            (std::vector<std::string>{"start metrics", "start informer", "election start",
                                      "start workers", "start pods", "stop workers",
                                      "election stop", "stop informer", "stop metrics"}));
}

TEST_F(ManagerTest, UnfinishedStopIsReportedAsNotDrained) {
  workers.drains = false;
  Manager m(clock, nullptr, std::chrono::seconds(5));
  addAll(m);
  stop.requestStop("early");
  const Manager::Result r = m.run(stop);
  EXPECT_EQ(r.kind, Kind::kStopped);
  // Stopped before leading: the workers never ran, so all is drained.
  EXPECT_TRUE(r.drained);
  StopSource second;
  Manager m2(clock, nullptr, std::chrono::seconds(5));
  m2.add(workers, Manager::Scope::kLeaderOnly);
  std::thread stopper([&] {
    log.waitFor("start workers");
    second.requestStop("test");
  });
  const Manager::Result r2 = m2.run(second);
  log.close();
  stopper.join();
  EXPECT_FALSE(r2.drained);
}

}  // namespace
}  // namespace exitrec
